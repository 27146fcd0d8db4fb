package org.dbos.server.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.dbos.kernel.testing.TestDatabase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's promises, through the real launcher and real processes. */
class CliIT {
  @TempDir Path cwd;

  @Test
  void upThenStatusAndSqlWithoutFlagsThenCleanRestart() throws Exception {
    String port = String.valueOf(TestDatabase.freePort());
    String nodeId;
    try (var up = Dbos.up(cwd, "--pg-port", port, "--http", "127.0.0.1:0", "--etcd", "127.0.0.1:0")) {
      nodeId = up.banner().getFirst().split(" ")[2];
      assertTrue(up.banner().stream().anyMatch(l -> l.contains("new principal 'admin'")), up.banner().toString());

      var status = Dbos.run(cwd, "status");
      assertEquals(0, status.exit(), status.err());
      assertTrue(status.out().contains("1 alive"), status.out());
      assertTrue(status.out().contains(nodeId), status.out());

      var sql = Dbos.run(cwd, "sql", "select call, outcome, principal from audit order by at");
      assertEquals(0, sql.exit(), sql.err());
      assertTrue(Pattern.compile("node\\.join\\s+\\| ok\\s+\\| system").matcher(sql.out()).find(), sql.out());
      assertTrue(Pattern.compile("status\\.read\\s+\\| ok\\s+\\| admin").matcher(sql.out()).find(), sql.out());
      up.stop();
    }
    assertTrue(Files.exists(cwd.resolve("dbos-data/pg/PG_VERSION")));
    assertTrue(!Files.exists(cwd.resolve("dbos-data/pg/postmaster.pid")), "PostgreSQL was shut down with the node");

    try (var up = Dbos.up(cwd, "--http", "127.0.0.1:0", "--etcd", "127.0.0.1:0")) { // same port as last time, no flag needed
      assertTrue(up.banner().stream().noneMatch(l -> l.contains("new principal")), "admin is bootstrapped once");
      var sql = Dbos.run(cwd, "sql", "select status from nodes where id = '" + nodeId + "'");
      assertEquals(0, sql.exit(), sql.err());
      assertTrue(sql.out().contains("stopped"), "a clean stop is recorded: " + sql.out());
    }
  }

  @Test
  void twoNodesOnOneDatabaseSeeEachOtherAndAKilledOneIsDeclaredDead() throws Exception {
    String port = String.valueOf(TestDatabase.freePort());
    Path other = cwd.resolve("other");
    try (var a = Dbos.up(cwd, "--pg-port", port, "--http", "127.0.0.1:0", "--etcd", "127.0.0.1:0", "--heartbeat", "200ms", "--dead-after", "2s")) {
      String url = "jdbc:postgresql://127.0.0.1:" + port + "/dbos?user=postgres";
      try (var b = Dbos.up(cwd, "--data-dir", other.toString(), "--db", url, "--db-password-file", "dbos-data/db-password",
          "--http", "127.0.0.1:0", "--etcd", "127.0.0.1:0", "--heartbeat", "200ms", "--dead-after", "2s")) {
        String bId = b.banner().getFirst().split(" ")[2];
        var status = Dbos.run(cwd, "status");
        assertTrue(status.out().contains("2 alive"), status.out());
        // The CLI run in the second node's directory reaches the same database.
        var fromB = Dbos.run(cwd, "status", "--data-dir", other.toString(), "--password-file", "dbos-data/admin.credential");
        assertEquals(0, fromB.exit(), fromB.err());
        assertTrue(fromB.out().contains("2 alive"), fromB.out());

        b.kill9();
        long deadline = System.nanoTime() + 20_000_000_000L;
        String row = "";
        while (System.nanoTime() < deadline) {
          var r = Dbos.run(cwd, "sql", "select status from nodes where id = '" + bId + "'");
          row = r.out();
          if (row.contains("dead")) {
            break;
          }
        }
        assertTrue(row.contains("dead"), "the killed node was not declared dead: " + row);
        var audit = Dbos.run(cwd, "sql", "select principal, outcome from audit where call = 'node.declare-dead' and object = 'node:" + bId + "'");
        assertTrue(audit.out().contains("(1 row)"), "declared dead exactly once: " + audit.out());
      }
    }
  }

  @Test
  void badInputGetsAOneLineErrorAndANonZeroExit() throws Exception {
    var wrongUrl = Dbos.run(cwd, "up", "--db", "postgres://localhost/x", "--http", "127.0.0.1:0", "--etcd", "127.0.0.1:0");
    assertEquals(2, wrongUrl.exit());
    assertOneLine(wrongUrl, "not a PostgreSQL JDBC URL");

    var unreachable = Dbos.run(cwd, "up", "--data-dir", "u", "--db", "jdbc:postgresql://127.0.0.1:1/dbos", "--http", "127.0.0.1:0", "--etcd", "127.0.0.1:0");
    assertEquals(5, unreachable.exit());
    assertOneLine(unreachable, "cannot reach the database");

    var noNode = Dbos.run(cwd, "status", "--data-dir", "nowhere");
    assertEquals(4, noNode.exit());
    assertOneLine(noNode, "no dbos node in");

    String port = String.valueOf(TestDatabase.freePort());
    try (var up = Dbos.up(cwd, "--pg-port", port, "--http", "127.0.0.1:0", "--etcd", "127.0.0.1:0")) {
      var inUse = Dbos.run(cwd, "up", "--http", "127.0.0.1:0", "--etcd", "127.0.0.1:0");
      assertEquals(1, inUse.exit());
      assertOneLine(inUse, "is in use by a running dbos node (pid " + up.pid() + ")");

      var syntax = Dbos.run(cwd, "sql", "selec 1");
      assertEquals(2, syntax.exit());
      assertOneLine(syntax, "syntax error");

      var readOnly = Dbos.run(cwd, "sql", "delete from audit_log");
      assertEquals(2, readOnly.exit());
      assertOneLine(readOnly, "queries only");

      Files.writeString(cwd.resolve("bob.pw"), "bobs-secret");
      var add = Dbos.run(cwd, "user", "add", "bob", "--new-password-file", "bob.pw");
      assertEquals(0, add.exit(), add.err());
      var denied = Dbos.run(cwd, "sql", "--write", "delete from audit_log", "-u", "bob", "--password-file", "bob.pw");
      assertEquals(3, denied.exit());
      assertOneLine(denied, "'bob' lacks ADMIN on sql");
      var deniedRead = Dbos.run(cwd, "sql", "select 1", "-u", "bob", "--password-file", "bob.pw");
      assertEquals(3, deniedRead.exit());

      // names that are not UTF-8, as the shell passes their bytes: two names, not one
      for (String octal : new String[] {"351", "350"}) {
        var made = Dbos.run(cwd, Map.of(), List.of("sh", "-c", "exec \"$@\" \"$(printf '/raw/caf\\" + octal + "')\"", "sh"),
            "fs", "mkdir", "-p");
        assertEquals(0, made.exit(), made.err());
      }
      assertArrayEquals(latin1("caf\u00e8\ncaf\u00e9\n"), Dbos.run(cwd, "fs", "ls", "/raw").raw(), "ls prints names as their bytes");
      // and they go to the local disk and back with their bytes: get -r, put -r, a local name in an argument
      Files.writeString(cwd.resolve("note"), "hello");
      var put = rawArgs(cwd, "'/raw/caf\\351/note'", "fs", "put", "note");
      assertEquals(0, put.exit(), put.err());
      var got = Dbos.run(cwd, "fs", "get", "-r", "/raw", "got");
      assertEquals(0, got.exit(), got.err());
      assertEquals("hello", Files.readString(Path.of(URI.create(cwd.toUri() + "got/caf%E9/note"))));
      assertArrayEquals(latin1("caf\u00e8\ncaf\u00e9\n"), run(cwd.resolve("got"), "ls"), "the local names are the same bytes");
      var one = rawArgs(cwd, "'/raw/caf\\351/note' 'caf\\351.txt'", "fs", "get");
      assertEquals(0, one.exit(), one.err());
      assertEquals("hello", Files.readString(Path.of(URI.create(cwd.toUri() + "caf%E9.txt"))));
      var back = Dbos.run(cwd, "fs", "put", "-r", "got", "/back");
      assertEquals(0, back.exit(), back.err());
      assertArrayEquals(latin1("caf\u00e8\ncaf\u00e9\n"), Dbos.run(cwd, "fs", "ls", "/back").raw());
      assertEquals("hello", rawArgs(cwd, "'/back/caf\\351/note'", "fs", "cat").out());

      var secrets = Dbos.run(cwd, "sql", "select secret_hash from principals");
      assertEquals(3, secrets.exit(), "no one reads the password hashes through dbos sql");

      var audit = Dbos.run(cwd, "sql", "select count(*) from audit where principal = 'bob' and outcome = 'denied'");
      assertTrue(audit.out().lines().anyMatch(l -> l.strip().equals("2")), "denied calls are audited: " + audit.out());
    }
  }

  /**
   * `dbos mount` against a running node: ordinary tools use the mount, Ctrl-C unmounts and the command
   * exits 0; without libfuse3 or /dev/fuse it fails with one clear line; `dbos up --mount` unmounts when stopped.
   */
  @Test
  void mountUntilCtrlCThenUpWithMountUntilStopped() throws Exception {
    Path mnt = Files.createDirectory(cwd.resolve("mnt"));
    try (var up = Dbos.up(cwd, "--pg-port", String.valueOf(TestDatabase.freePort()), "--http", "127.0.0.1:0",
        "--etcd", "127.0.0.1:0")) {
      // A JVM keeps a SIGINT it was started ignoring ignored, and children inherit that (as does a
      // test JVM a non-interactive shell put in the background): env gives the command a terminal's.
      Path err = cwd.resolve("mount.err");
      Process mount = new ProcessBuilder("env", "--default-signal=INT", Dbos.launcher().toString(), "mount", mnt.toString())
          .directory(cwd.toFile()).redirectError(err.toFile()).start();
      try {
        String banner = mount.inputReader().readLine();
        assertTrue(banner != null && banner.startsWith("DBFS mounted at " + mnt), banner + " " + Files.readString(err));
        assertTrue(mounted(mnt), "in /proc/self/mountinfo");
        var tools = new ProcessBuilder("sh", "-c", "seq 1 1000 > nums && cp nums copy && cmp nums copy && wc -l < copy")
            .directory(mnt.toFile()).redirectErrorStream(true).start();
        assertEquals("1000\n", new String(tools.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
        assertEquals(0, tools.waitFor());

        long ignored = Files.readAllLines(Path.of("/proc/" + mount.pid() + "/status")).stream()
            .filter(l -> l.startsWith("SigIgn:")).mapToLong(l -> Long.parseLong(l.substring(7).strip(), 16)).sum();
        assertEquals(0, ignored & 2, "dbos mount ignores SIGINT");
        assertEquals(0, new ProcessBuilder("kill", "-INT", String.valueOf(mount.pid())).start().waitFor());
        assertTrue(mount.waitFor(30, TimeUnit.SECONDS), "Ctrl-C did not end dbos mount");
        assertEquals(0, mount.exitValue(), Files.readString(err));
        assertFalse(mounted(mnt), "Ctrl-C unmounted");
      } finally {
        mount.destroyForcibly();
      }
      assertEquals(1000, Dbos.run(cwd, "fs", "cat", "/copy").out().lines().count(), "written through the mount");

      var noFuse = Dbos.run(cwd, Map.of("DBOS_JAVA_OPTS", "-Ddbos.fuse.library=/nowhere/libfuse3.so.3"),
          "mount", mnt.toString());
      assertEquals(1, noFuse.exit());
      assertOneLine(noFuse, "FUSE is not available here: no /nowhere/libfuse3.so.3 (install it with `apt-get install fuse3`)");
      assertFalse(mounted(mnt));

      // no /dev/fuse: run in a mount namespace of its own whose /dev is a tmpfs holding only what a
      // JVM and a shell need, bound from the real one
      Path realDev = Files.createDirectory(cwd.resolve("real-dev"));
      String hideFuse = "mount --bind /dev " + realDev + " && mount -t tmpfs none /dev"
          + " && for d in null zero random urandom tty; do touch /dev/$d && mount --bind " + realDev + "/$d /dev/$d; done"
          + " && ln -s /proc/self/fd /dev/fd && test ! -e /dev/fuse && exec \"$@\"";
      var noDevice = Dbos.run(cwd, Map.of(), List.of("unshare", "--mount", "--propagation", "private", "sh", "-c", hideFuse, "sh"),
          "mount", mnt.toString());
      assertEquals(1, noDevice.exit(), noDevice.err());
      assertOneLine(noDevice, "FUSE is not available here: no /dev/fuse (install it with `apt-get install fuse3`)");
      assertFalse(mounted(mnt));
    }

    try (var up = Dbos.up(cwd, "--http", "127.0.0.1:0", "--etcd", "127.0.0.1:0", "--mount", mnt.toString())) {
      assertTrue(mounted(mnt), "dbos up --mount mounted");
      assertEquals(1000, Files.readAllLines(mnt.resolve("nums")).size());
      up.stop(); // SIGTERM
      assertFalse(mounted(mnt), "dbos up unmounted when stopped");
    }
  }

  /** Whether {@code dir} is a mount point, by the kernel's table (the 5th field is the mount point). */
  static boolean mounted(Path dir) throws IOException {
    String at = dir.toAbsolutePath().toString();
    return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream().anyMatch(l -> l.split(" ")[4].equals(at));
  }

  static void assertOneLine(Dbos.Result r, String fragment) {
    assertEquals(1, r.errLines().size(), "one line on stderr, got: " + r.err());
    assertTrue(r.errLines().getFirst().startsWith("dbos: ") && r.errLines().getFirst().contains(fragment), r.err());
  }

  /** The bytes of {@code s}'s characters, each below 256: Latin-1 text as a file system holds it. */
  private static byte[] latin1(String s) {
    return s.getBytes(StandardCharsets.ISO_8859_1);
  }

  /**
   * `dbos ARGS…` followed by arguments the shell makes from {@code printf} formats (each quoted in
   * {@code formats}, separated by spaces), so that they reach dbos as the bytes they name.
   */
  private static Dbos.Result rawArgs(Path cwd, String formats, String... args) throws Exception {
    var script = new StringBuilder("exec \"$@\"");
    for (String f : formats.split(" ")) {
      script.append(" \"$(printf ").append(f).append(")\"");
    }
    return Dbos.run(cwd, Map.of(), List.of("sh", "-c", script.toString(), "sh"), args);
  }

  /** What {@code command} prints in {@code dir}, as bytes. */
  private static byte[] run(Path dir, String... command) throws Exception {
    Process p = new ProcessBuilder(command).directory(dir.toFile()).start();
    byte[] out = p.getInputStream().readAllBytes();
    assertEquals(0, p.waitFor());
    return out;
  }
}
