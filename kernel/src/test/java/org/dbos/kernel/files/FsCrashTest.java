package org.dbos.kernel.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.Node;
import org.dbos.kernel.Session;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.Test;

/**
 * SIGKILL a client JVM (its database lives on) in the middle of a large write, a rename storm and
 * groups of small creates; afterwards the file system is consistent and every file whose write (or
 * rename, or create and fsync, or createFile) had returned is intact where it was put. NodeCrashIT kills a whole node and its database.
 */
class FsCrashTest {
  @Test
  void killedWriterLeavesAConsistentFileSystemWithEveryDurableFileIntact() throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    try (Node node = TestNode.boot(db)) {
      Session root = node.kernel().login("admin", node.dataDirectory().adminCredential().orElseThrow());
      FileSystem fs = FileSystem.of(node.kernel());
      fs.mkdir(root, "/crash", 0755);
      for (int d = 0; d < 3; d++) {
        fs.mkdir(root, "/crash/d" + d, 0755);
      }
      for (int t = 0; t < FsCrashChild.SMALL_WRITERS; t++) {
        fs.mkdir(root, "/crash/p" + t, 0755);
      }
    }
    Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), FsCrashChild.class.getName(), db.url(), db.user(), db.password())
        .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    Set<Integer> done = new HashSet<>();
    Set<Integer> moved = new HashSet<>();
    Set<Integer> synced = new HashSet<>();
    Set<String> put = new HashSet<>();
    int largeMb = 0;
    try (var in = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      for (String line; (line = in.readLine()) != null; ) {
        String[] w = line.split(" ");
        switch (w[0]) {
          case "DONE" -> done.add(Integer.parseInt(w[1]));
          case "MOVED" -> moved.add(Integer.parseInt(w[1]));
          case "SYNCED" -> synced.add(Integer.parseInt(w[1]));
          case "LARGE" -> largeMb = Integer.parseInt(w[1]);
          case "PUT" -> put.add("/crash/p" + w[1] + "/" + w[2]);
          default -> { }
        }
        if (done.size() >= 30 && largeMb >= 8 && put.size() >= 200 || System.nanoTime() > deadline) {
          child.destroyForcibly(); // SIGKILL, mid-call
          break;
        }
      }
    }
    assertTrue(child.waitFor(30, TimeUnit.SECONDS));
    assertTrue(done.size() >= 30 && synced.size() >= 29 && largeMb >= 8 && put.size() >= 200,
        "the child made progress: " + done.size() + " files, " + synced.size() + " fsynced, " + largeMb + " MiB, "
            + put.size() + " small files");

    try (Node node = TestNode.boot(db)) {
      Session root = node.kernel().openSession("admin", java.time.Duration.ofMinutes(5));
      FileSystem fs = FileSystem.of(node.kernel());
      CheckReport r = fs.check(root, true);
      assertTrue(r.ok(), r.problems()::toString);
      // the storm moves d0 into d1 and back: a kill between the two leaves it in d1, with its files
      boolean home = exists(fs, root, "/crash/d0");
      assertTrue(home != exists(fs, root, "/crash/d1/d0"), "d0 is in exactly one place");
      String d0 = home ? "/crash/d0" : "/crash/d1/d0";
      for (int i : done) {
        String at = "/crash/f" + i;
        int d = (i + 1) % 3;
        String movedTo = (d == 0 ? d0 : "/crash/d" + d) + "/g" + i;
        // a rename that had not returned may or may not have happened; one that had, did
        String path = moved.contains(i) || exists(fs, root, movedTo) ? movedTo : at;
        assertArrayEquals(FsCrashChild.content(i), readAll(fs, root, path), path);
      }
      for (String p : put) {
        int t = Integer.parseInt(p.substring("/crash/p".length(), p.lastIndexOf('/')));
        int i = Integer.parseInt(p.substring(p.lastIndexOf('/') + 1));
        assertArrayEquals(FsCrashChild.small(t, i), readAll(fs, root, p), "created by a call that returned: " + p);
      }
      for (int i : synced) {
        assertTrue(exists(fs, root, "/crash/e" + i), "created and fsynced: /crash/e" + i);
      }
      byte[] large = readAll(fs, root, "/crash/large");
      assertTrue(large.length >= (long) largeMb << 20, "large file holds every acknowledged MiB");
      for (int n = 0; n < largeMb; n++) {
        byte[] mb = new byte[1 << 20];
        System.arraycopy(large, n << 20, mb, 0, mb.length);
        assertArrayEquals(FsCrashChild.megabyte(n), mb, "MiB " + n);
      }
    }
  }

  static boolean exists(FileSystem fs, Session s, String path) {
    try {
      fs.stat(s, path, false);
      return true;
    } catch (FsException e) {
      return false;
    }
  }

  static byte[] readAll(FileSystem fs, Session s, String path) throws Exception {
    try (var in = fs.openInput(s, path)) {
      return in.readAllBytes();
    }
  }
}
