package org.dbos.kernel.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.DistributionSummary;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Node;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Creates by concurrent callers, which {@link FileSystem#createFile} writes in groups (one statement
 * and one commit for many files): each file whole, each call its own audit record and its own answer,
 * and a group that cannot be written as a whole written one create at a time.
 */
class GroupCreateTest {
  static final int WRITERS = 16;
  static Node node;
  static Kernel kernel;
  static FileSystem fs;
  static Session root;

  @BeforeAll
  static void boot() {
    node = TestNode.boot();
    kernel = node.kernel();
    fs = FileSystem.of(kernel);
    root = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
  }

  @AfterAll
  static void close() {
    node.close();
  }

  /** What each writer's calls answered, by path: "ok" or the error. */
  interface Writer {
    void write(int writer, CyclicBarrier start, Map<String, String> answers) throws Exception;
  }

  static Map<String, String> run(int writers, Writer w) throws Exception {
    var answers = new ConcurrentHashMap<String, String>();
    var start = new CyclicBarrier(writers);
    ExecutorService pool = Executors.newFixedThreadPool(writers);
    try {
      var done = new ArrayList<Future<?>>();
      for (int t = 0; t < writers; t++) {
        int writer = t;
        done.add(pool.submit(() -> {
          w.write(writer, start, answers);
          return null;
        }));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
    return new TreeMap<>(answers);
  }

  static String answer(Runnable call) {
    try {
      call.run();
      return "ok";
    } catch (FsException e) {
      return e.errno().name();
    } catch (SyscallException e) {
      return e.code().name();
    }
  }

  static byte[] content(String path) {
    return (path + "\n").repeat(1 + Math.abs(path.hashCode()) % 50).getBytes(StandardCharsets.UTF_8);
  }

  static String read(Session s, String path) {
    FileHandle h = fs.open(s, path, FileSystem.O_RDONLY, 0);
    try {
      return new String(fs.read(s, h, 0, 1 << 20), StandardCharsets.UTF_8);
    } finally {
      fs.close(h);
    }
  }

  static long audited(String call, String outcome, String objectPrefix) {
    return kernel.database().transaction(c -> {
      var ps = c.prepareStatement("SELECT count(*) FROM audit WHERE call = ? AND outcome = ? AND object LIKE ?");
      ps.setString(1, call);
      ps.setString(2, outcome);
      ps.setString(3, objectPrefix + "%");
      var rs = ps.executeQuery();
      rs.next();
      return rs.getLong(1);
    });
  }

  static DistributionSummary groups() {
    return kernel.meters().get("dbos.fs.create.group").summary();
  }

  static double failedGroups() {
    return kernel.meters().get("dbos.fs.create.group.failed").counter().count();
  }

  @Test
  void concurrentCreatesAreWrittenInGroupsEachWholeAndAuditedOnce() throws Exception {
    fs.mkdir(root, "/g", 0755);
    for (int t = 0; t < WRITERS; t++) {
      fs.mkdir(root, "/g/w" + t, 0755);
      fs.createFile(root, "/g/w" + t + "/first", 0644, new byte[0]); // walks the directory: known from now on
    }
    long groupsBefore = groups().count();
    int files = 40;
    Map<String, String> answers = run(WRITERS, (t, start, out) -> {
      start.await();
      for (int i = 0; i < files; i++) {
        String p = "/g/w" + t + "/f" + i;
        out.put(p, answer(() -> fs.createFile(root, p, 0640, content(p))));
      }
    });
    assertEquals(WRITERS * files, answers.size());
    assertTrue(answers.values().stream().allMatch("ok"::equals), answers::toString);
    assertTrue(groups().count() > groupsBefore && groups().max() > 1,
        "concurrent creates were written in groups: " + groups().count() + " groups, the largest " + groups().max());
    for (String p : answers.keySet()) {
      assertEquals(new String(content(p), StandardCharsets.UTF_8), read(root, p), p);
      Stat st = fs.stat(root, p, false);
      assertEquals(List.of(0640, 1, 1L, (long) content(p).length), List.of(st.mode(), st.nlink(), st.version(), st.size()));
    }
    for (int t = 0; t < WRITERS; t++) {
      assertEquals(files + 1, fs.list(root, "/g/w" + t).size());
    }
    assertEquals(WRITERS * (files + 1), audited("fs.create", "ok", "file:/g/"));
    assertTrue(fs.check(root, true).ok(), () -> fs.check(root, true).problems().toString());
  }

  /**
   * A group holding a create that must fail (its name exists; its caller's session has ended) is
   * refused as a whole, and each of its creates then runs alone: the others are written, and the
   * failing ones get their own errors, audited as such.
   */
  @Test
  void aRefusedCreateFailsAloneAndTheRestOfItsGroupIsWritten() throws Exception {
    kernel.principals().create(root, "gina", "user", "pw-gina", 2401, 2401, false);
    Session gina = kernel.login("gina", "pw-gina");
    fs.mkdir(root, "/x", 0777);
    for (int t = 0; t < WRITERS; t++) {
      fs.mkdir(gina, "/x/w" + t, 0755);
      fs.createFile(gina, "/x/w" + t + "/taken", 0644, new byte[0]);
    }
    Session ended = kernel.login("gina", "pw-gina");
    kernel.closeSession(ended);
    double failedBefore = failedGroups();
    int files = 40;
    Map<String, String> answers = run(WRITERS, (t, start, out) -> {
      start.await();
      for (int i = 0; i < files; i++) {
        String p = "/x/w" + t + (i % 4 == 3 ? "/taken" : "/f" + i);
        Session s = t == 0 && i % 4 == 1 ? ended : gina;
        String a = answer(() -> fs.createFile(s, p, 0644, content(p)));
        out.merge(p, a, (x, y) -> x + "," + y);
      }
    });
    for (int t = 0; t < WRITERS; t++) {
      for (int i = 0; i < files; i++) {
        String p = "/x/w" + t + "/f" + i;
        if (i % 4 == 3) {
          continue;
        }
        boolean refused = t == 0 && i % 4 == 1;
        assertEquals(refused ? "PERMISSION_DENIED" : "ok", answers.get(p), p);
        assertEquals(refused ? "ENOENT" : "ok", answer(() -> fs.stat(root, p, false)), p);
        if (!refused) {
          assertEquals(new String(content(p), StandardCharsets.UTF_8), read(root, p));
        }
      }
      assertEquals(String.join(",", Collections.nCopies(files / 4, "EEXIST")), answers.get("/x/w" + t + "/taken"));
      assertEquals("", read(root, "/x/w" + t + "/taken"));
    }
    assertTrue(failedGroups() > failedBefore, "some group held a create that failed, and was refused whole");
    assertEquals(WRITERS * files / 4, audited("fs.create", "error", "file:/x/"));
    assertEquals(files / 4, audited("fs.create", "denied", "file:/x/"));
    assertEquals(WRITERS * (1 + files - files / 4) - files / 4, audited("fs.create", "ok", "file:/x/"));
    assertTrue(fs.check(root, true).ok(), () -> fs.check(root, true).problems().toString());
  }

  /**
   * Another node renames a directory this node knows the way to: a group of creates under its old
   * name finds the way changed, and each create then walks the path itself and finds it gone.
   */
  @Test
  void aDirectoryMovedByAnotherNodeIsNotWrittenInto() throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    try (Node a = TestNode.boot(db); Node b = TestNode.boot(db)) {
      FileSystem here = FileSystem.of(a.kernel());
      FileSystem there = FileSystem.of(b.kernel());
      String secret = a.dataDirectory().adminCredential().orElseThrow();
      Session ra = a.kernel().login("admin", secret);
      Session rb = b.kernel().login("admin", secret);
      here.mkdir(ra, "/m", 0755);
      for (int t = 0; t < WRITERS; t++) {
        here.mkdir(ra, "/m/w" + t, 0755);
        here.createFile(ra, "/m/w" + t + "/first", 0644, new byte[0]);
      }
      there.rename(rb, "/m", "/moved", 0);
      Map<String, String> answers = run(WRITERS, (t, start, out) -> {
        start.await();
        for (int i = 0; i < 10; i++) {
          String p = "/m/w" + t + "/f" + i;
          out.put(p, answer(() -> here.createFile(ra, p, 0644, content(p))));
        }
      });
      assertTrue(answers.values().stream().allMatch("ENOENT"::equals), answers::toString);
      for (int t = 0; t < WRITERS; t++) {
        assertEquals(List.of("first"), there.list(rb, "/moved/w" + t).stream().map(DirEntry::name).toList());
      }
      assertTrue(there.check(rb, true).ok(), () -> there.check(rb, true).problems().toString());
    }
  }
}
