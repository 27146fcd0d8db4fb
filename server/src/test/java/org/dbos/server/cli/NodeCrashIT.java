package org.dbos.server.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.dbos.kernel.testing.TestDatabase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A whole node crashes: `dbos up --mount` and its embedded PostgreSQL are SIGKILLed together while
 * files are written and renamed through the mount and keys put through etcdctl. After a plain restart
 * the database has recovered, `dbos fs check` finds the file system consistent, and everything
 * acknowledged (a file whose fsync and close returned, the bytes of a large file up to its last
 * fsync, a rename followed by an fsync of both directories, a put etcdctl printed OK for) is there.
 * And PostgreSQL alone SIGKILLed under a running node.
 */
class NodeCrashIT {
  @TempDir Path cwd;

  @Test
  void sigkillOfNodeAndDatabaseLosesNothingAcknowledged() throws Exception {
    Path mnt = Files.createDirectory(cwd.resolve("mnt"));
    String etcd = "127.0.0.1:" + TestDatabase.freePort();
    String[] args = {"--pg-port", String.valueOf(TestDatabase.freePort()), "--http", "127.0.0.1:0", "--etcd", etcd,
        "--mount", mnt.toString()};
    var files = new CopyOnWriteArrayList<Integer>();
    var grouped = new CopyOnWriteArrayList<Path>();
    var keys = new CopyOnWriteArrayList<Integer>();
    var largeSynced = new AtomicLong();
    var storm = new RenameStorm(mnt.resolve("crash/storm"));
    try (var up = Dbos.up(cwd, args)) {
      Files.createDirectory(mnt.resolve("crash"));
      storm.setUp();
      var writers = new ArrayList<>(List.of(
          Thread.ofPlatform().start(() -> smallFiles(mnt, files)),
          Thread.ofPlatform().start(() -> largeFile(mnt, largeSynced)),
          Thread.ofPlatform().start(storm::run),
          Thread.ofPlatform().start(() -> puts(etcd, keys))));
      for (int t = 0; t < 4; t++) { // fsyncing at once: their creates are committed in groups
        Path dir = Files.createDirectory(mnt.resolve("crash/s" + t));
        writers.add(Thread.ofPlatform().start(() -> smallFilesIn(dir, grouped)));
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while ((files.size() < 40 || grouped.size() < 160 || largeSynced.get() < (8 << 20) || storm.renames.get() < 30
          || keys.size() < 20) && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      assertTrue(files.size() >= 40 && grouped.size() >= 160 && largeSynced.get() >= (8 << 20) && storm.renames.get() >= 30
              && keys.size() >= 20,
          "progress before the crash: " + files.size() + " + " + grouped.size() + " files, " + largeSynced.get() + " bytes, "
              + storm.renames.get() + " renames, " + keys.size() + " keys");
      killNodeAndDatabase(up);
      for (Thread w : writers) {
        w.join(TimeUnit.SECONDS.toMillis(30));
        assertTrue(!w.isAlive(), "a writer outlived the node");
      }
      System.out.printf("killed after %d + %d files, %d MiB, %d renames, %d keys acknowledged%n", files.size(),
          grouped.size(), largeSynced.get() >> 20, storm.renames.get(), keys.size());
    }

    try (var up = Dbos.up(cwd, args)) { // the stale mount is cleared, PostgreSQL recovers from its WAL
      assertTrue(Files.readString(up.errFile()).contains("unmounting it"), "the stale mount was found");
      var check = Dbos.run(cwd, "fs", "check");
      assertEquals(0, check.exit(), check.out() + check.err());
      for (int i : files) {
        assertArrayEquals(content(i), Files.readAllBytes(mnt.resolve("crash/f" + i)), "file " + i);
      }
      for (Path f : grouped) {
        int i = Integer.parseInt(f.getFileName().toString().substring(1));
        assertArrayEquals(content(i), Files.readAllBytes(f), "file " + f);
      }
      byte[] large = Files.readAllBytes(mnt.resolve("crash/large"));
      assertTrue(large.length >= largeSynced.get(), large.length + " < " + largeSynced.get());
      for (int off = 0; off < largeSynced.get(); off += 1 << 20) {
        assertArrayEquals(block(off >> 20), Arrays.copyOfRange(large, off, off + (1 << 20)), "large file at " + off);
      }
      storm.verify();
      for (int i : keys) {
        var get = run("etcdctl", "--endpoints", etcd, "get", "--print-value-only", "crash/k" + i);
        assertEquals("v" + i + "\n", get, "key " + i);
      }
    }
  }

  /**
   * Only the node's PostgreSQL is SIGKILLed, under writes through the mount and etcdctl: the running
   * node starts it again, it recovers from its WAL, and the node carries on — everything acknowledged
   * is there, new writes succeed, the file system is consistent — without a restart of `dbos up`.
   */
  @Test
  void sigkillOfTheDatabaseAloneIsRecoveredByTheRunningNode() throws Exception {
    Path mnt = Files.createDirectory(cwd.resolve("mnt"));
    String etcd = "127.0.0.1:" + TestDatabase.freePort();
    var files = new CopyOnWriteArrayList<Integer>();
    var keys = new CopyOnWriteArrayList<Integer>();
    try (var up = Dbos.up(cwd, "--pg-port", String.valueOf(TestDatabase.freePort()), "--http", "127.0.0.1:0",
        "--etcd", etcd, "--mount", mnt.toString())) {
      Files.createDirectory(mnt.resolve("crash"));
      var writers = List.of(Thread.ofPlatform().start(() -> smallFiles(mnt, files)),
          Thread.ofPlatform().start(() -> puts(etcd, keys)));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while ((files.size() < 40 || keys.size() < 20) && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      assertTrue(files.size() >= 40 && keys.size() >= 20, "progress before the kill: " + files.size() + " files, "
          + keys.size() + " keys");
      long postmaster = postmasterPid();
      new ProcessBuilder("kill", "-9", String.valueOf(postmaster)).inheritIO().start().waitFor();
      while ((postmasterPid() == postmaster || postmasterPid() == -1) && System.nanoTime() < deadline) {
        Thread.sleep(50);
      }
      assertTrue(postmasterPid() != postmaster && postmasterPid() != -1,
          "PostgreSQL was not started again: " + Files.readString(up.errFile()));

      // the node carries on: new writes through the mount and the etcd API succeed
      for (int i = 0; i < 20; i++) {
        Path f = mnt.resolve("crash/after" + i);
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) { // the first calls may still meet the outage
          try {
            Files.write(f, content(i), StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE, StandardOpenOption.SYNC);
            break;
          } catch (IOException e) {
            assertTrue(System.nanoTime() < until, "writes through the mount fail after the restart: " + e);
            Thread.sleep(100);
          }
        }
      }
      assertEquals("OK\n", run("etcdctl", "--endpoints", etcd, "put", "crash/after", "yes"));
      List<Integer> ackedFiles = List.copyOf(files);
      List<Integer> ackedKeys = List.copyOf(keys);
      var check = Dbos.run(cwd, "fs", "check");
      assertEquals(0, check.exit(), check.out() + check.err());
      for (int i : ackedFiles) {
        assertArrayEquals(content(i), Files.readAllBytes(mnt.resolve("crash/f" + i)), "file " + i);
      }
      for (int i : ackedKeys) {
        assertEquals("v" + i + "\n", run("etcdctl", "--endpoints", etcd, "get", "--print-value-only", "crash/k" + i));
      }
      System.out.printf("PostgreSQL killed and started again: %d files and %d keys acknowledged and checked "
          + "(the writers went on: %d and %d by now)%n", ackedFiles.size(), ackedKeys.size(), files.size(),
          keys.size());
      up.close(); // the writers stop with the node
      for (Thread w : writers) {
        w.join(TimeUnit.SECONDS.toMillis(30));
      }
    }
  }

  private long postmasterPid() {
    try {
      return Long.parseLong(Files.readAllLines(cwd.resolve("dbos-data/pg/postmaster.pid")).getFirst().strip());
    } catch (IOException | RuntimeException e) {
      return -1; // being replaced
    }
  }

  /**
   * Renames through the mount, one after another: files and a directory (with files in it) moved
   * between storm/a and storm/b, each rename followed by an fsync of both directories, as a program
   * that needs a rename to survive a crash does on ext4. Records where each name was last put once
   * those fsyncs returned, and which name was being moved when the node died.
   */
  static final class RenameStorm {
    final Path root;
    final Map<String, String> placed = new ConcurrentHashMap<>(); // name -> "a" or "b", acknowledged
    final AtomicReference<String> moving = new AtomicReference<>();
    final AtomicInteger renames = new AtomicInteger();

    RenameStorm(Path root) {
      this.root = root;
    }

    /** storm/a holds files r0…r19 and directory d with x0…x2, storm/b is empty; all of it fsynced. */
    void setUp() throws IOException {
      Files.createDirectories(root.resolve("a/d"));
      Files.createDirectories(root.resolve("b"));
      for (int j = 0; j < 20; j++) {
        write(root.resolve("a/r" + j), content(1000 + j));
        placed.put("r" + j, "a");
      }
      for (int x = 0; x < 3; x++) {
        write(root.resolve("a/d/x" + x), content(2000 + x));
      }
      placed.put("d", "a");
      fsync(root.resolve("a/d"));
      fsync(root.resolve("a"));
      fsync(root.resolve("b"));
      fsync(root);
    }

    void run() {
      List<String> names = placed.keySet().stream().sorted().toList();
      try {
        for (int i = 0; ; i++) {
          String name = names.get(i % names.size());
          String from = placed.get(name);
          String to = from.equals("a") ? "b" : "a";
          moving.set(name);
          Files.move(root.resolve(from).resolve(name), root.resolve(to).resolve(name), StandardCopyOption.ATOMIC_MOVE);
          fsync(root.resolve(from));
          fsync(root.resolve(to));
          placed.put(name, to);
          moving.set(null);
          renames.incrementAndGet();
        }
      } catch (IOException e) {
        // the node died
      }
    }

    /**
     * Every name is in exactly one of a and b, with its content; where its last rename was
     * acknowledged, unless that name was being moved at the kill (then either place is right).
     */
    void verify() throws IOException {
      var listed = new ArrayList<String>();
      for (String dir : List.of("a", "b")) {
        try (var l = Files.list(root.resolve(dir))) {
          l.forEach(p -> listed.add(p.getFileName().toString()));
        }
      }
      assertEquals(placed.keySet().stream().sorted().toList(), listed.stream().sorted().toList(),
          "the storm's names, each once, nothing lost or added");
      for (var e : placed.entrySet()) {
        String name = e.getKey();
        String at = Files.exists(root.resolve("a").resolve(name), LinkOption.NOFOLLOW_LINKS) ? "a" : "b";
        if (!name.equals(moving.get())) {
          assertEquals(e.getValue(), at, "the acknowledged rename of " + name);
        }
        if (name.equals("d")) {
          for (int x = 0; x < 3; x++) {
            assertArrayEquals(content(2000 + x), Files.readAllBytes(root.resolve(at + "/d/x" + x)), "d/x" + x);
          }
          try (var l = Files.list(root.resolve(at + "/d"))) {
            assertEquals(3, l.count(), "d holds its three files");
          }
        } else {
          assertArrayEquals(content(1000 + Integer.parseInt(name.substring(1))), Files.readAllBytes(root.resolve(at).resolve(name)), name);
        }
      }
      System.out.printf("rename storm: %d acknowledged renames checked (%s was in flight)%n", renames.get(), moving.get());
    }

    private static void write(Path f, byte[] data) throws IOException {
      try (var ch = FileChannel.open(f, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(data));
        ch.force(true);
      }
    }

    /** fsync of a directory: on Linux a directory opens for reading, and force is fsync(2). */
    private static void fsync(Path dir) throws IOException {
      try (var ch = FileChannel.open(dir, StandardOpenOption.READ)) {
        ch.force(true);
      }
    }
  }

  /** 4 KiB files, each written, fsynced and closed; its number is recorded once close returned. */
  private static void smallFiles(Path mnt, List<Integer> acked) {
    try {
      for (int i = 0; ; i++) {
        try (var ch = FileChannel.open(mnt.resolve("crash/f" + i), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
          ch.write(ByteBuffer.wrap(content(i)));
          ch.force(true);
        }
        acked.add(i);
      }
    } catch (IOException e) {
      // the node died
    }
  }

  /** {@link #smallFiles} in {@code dir}; each file's path is recorded once its close returned. */
  private static void smallFilesIn(Path dir, List<Path> acked) {
    try {
      for (int i = 0; ; i++) {
        Path f = dir.resolve("f" + i);
        try (var ch = FileChannel.open(f, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
          ch.write(ByteBuffer.wrap(content(i)));
          ch.force(true);
        }
        acked.add(f);
      }
    } catch (IOException e) {
      // the node died
    }
  }

  /** 1 MiB blocks appended to one file, fsynced every block; the synced length is recorded. */
  private static void largeFile(Path mnt, AtomicLong synced) {
    try (var ch = FileChannel.open(mnt.resolve("crash/large"), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      for (int b = 0; ; b++) {
        ch.write(ByteBuffer.wrap(block(b)));
        ch.force(false);
        synced.set((long) (b + 1) << 20);
      }
    } catch (IOException e) {
      // the node died
    }
  }

  private static void puts(String endpoint, List<Integer> acked) {
    try {
      for (int i = 0; ; i++) {
        if (!run("etcdctl", "--endpoints", endpoint, "--command-timeout", "5s", "put", "crash/k" + i, "v" + i).equals("OK\n")) {
          return;
        }
        acked.add(i);
      }
    } catch (IOException | InterruptedException e) {
      // the node died
    }
  }

  /** SIGKILL, at once, the node's JVM and its PostgreSQL: the postmaster and every backend. */
  private void killNodeAndDatabase(Dbos.Up up) throws Exception {
    long postmaster = Long.parseLong(Files.readAllLines(cwd.resolve("dbos-data/pg/postmaster.pid")).getFirst().strip());
    var pids = new ArrayList<String>(List.of("-9", String.valueOf(up.pid()), String.valueOf(postmaster)));
    up.process().toHandle().descendants().forEach(h -> pids.add(String.valueOf(h.pid())));
    ProcessHandle.of(postmaster).orElseThrow().descendants().forEach(h -> pids.add(String.valueOf(h.pid())));
    pids.addFirst("kill");
    new ProcessBuilder(pids).inheritIO().start().waitFor();
    assertTrue(up.process().waitFor(30, TimeUnit.SECONDS));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (ProcessHandle.of(postmaster).map(ProcessHandle::isAlive).orElse(false) && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
  }

  private static byte[] content(int i) {
    byte[] b = new byte[4096];
    Arrays.fill(b, (byte) ('a' + i % 26));
    System.arraycopy(("file " + i).getBytes(StandardCharsets.UTF_8), 0, b, 0, ("file " + i).length());
    return b;
  }

  private static byte[] block(int n) {
    byte[] b = new byte[1 << 20];
    for (int i = 0; i < b.length; i += 8) {
      b[i] = (byte) n;
      b[i + 1] = (byte) (i >> 3);
    }
    return b;
  }

  private static String run(String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor();
    return out;
  }
}
