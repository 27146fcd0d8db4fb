package org.dbos.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NodeBootTest {
  @Test
  void nodesStartingTogetherOnAnEmptyDatabaseMigrateOnceAndBootstrapOneAdmin() throws Exception {
    TestDatabase.Url db = TestDatabase.empty();
    int n = 3;
    List<Node> nodes = new ArrayList<>();
    try (var pool = Executors.newFixedThreadPool(n)) {
      List<Future<Node>> boots = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        boots.add(pool.submit((Callable<Node>) () -> TestNode.boot(db)));
      }
      for (var f : boots) {
        nodes.add(f.get());
      }
    }
    try {
      long admins = nodes.stream().filter(x -> x.bootstrappedAdminSecret().isPresent()).count();
      assertEquals(1, admins, "exactly one node bootstraps the admin password");
      Kernel k = nodes.getFirst().kernel();
      long migrations = k.database().transaction(c -> {
        var rs = c.createStatement().executeQuery("SELECT count(*) FROM flyway_schema_history WHERE version = '1'");
        rs.next();
        return rs.getLong(1);
      });
      assertEquals(1, migrations);
      long alive = k.database().transaction(c -> {
        var rs = c.createStatement().executeQuery("SELECT count(*) FROM nodes WHERE status = 'alive'");
        rs.next();
        return rs.getLong(1);
      });
      assertEquals(n, alive);
      // The winner's credential works for everyone.
      Node winner = nodes.stream().filter(x -> x.bootstrappedAdminSecret().isPresent()).findFirst().orElseThrow();
      for (Node node : nodes) {
        node.kernel().login(Kernel.ADMIN, winner.bootstrappedAdminSecret().get());
      }
    } finally {
      nodes.forEach(Node::close);
    }
  }

  @Test
  void aCallWhoseConnectionDiesIsRunAgainOnANewOne() {
    try (Node node = TestNode.boot()) {
      Kernel k = node.kernel();
      k.database().transaction(c -> c.createStatement().executeUpdate("CREATE TABLE t (x int)"));
      Session admin = k.openSession(Kernel.ADMIN, java.time.Duration.ofMinutes(5));
      var attempts = new AtomicInteger();
      int r = k.call(admin, "t.put", Right.WRITE, "t", tx -> {
        tx.update("INSERT INTO t VALUES (1)");
        if (attempts.incrementAndGet() == 1) {
          tx.queryOne("SELECT pg_terminate_backend(pg_backend_pid())", rs -> null); // the server drops us
        }
        return 42;
      });
      assertEquals(42, r);
      assertEquals(2, attempts.get());
      long rows = k.database().transaction(c -> {
        var rs = c.createStatement().executeQuery("SELECT count(*) FROM t");
        rs.next();
        return rs.getLong(1);
      });
      assertEquals(1, rows, "applied once");
    }
  }

  @Test
  void aSecondNodeOnTheSameDataDirectoryIsRefused() {
    var db = TestDatabase.fresh();
    var cfg = TestNode.config(db);
    try (Node first = Node.boot(cfg)) {
      var e = assertThrows(SyscallException.class, () -> Node.boot(cfg));
      assertEquals(SyscallException.Code.FAILED_PRECONDITION, e.code());
      assertTrue(e.getMessage().contains("in use by a running dbos node"), e.getMessage());
    }
  }

  @Test
  void anEmbeddedDatabaseKilledUnderARunningNodeIsStartedAgainAndLosesNothing(@TempDir Path dir) throws Exception {
    Path data = dir.resolve("node");
    try (Node node = Node.boot(NodeConfig.defaults(data).withPgPort(TestDatabase.freePort()).withPoolSize(4))) {
      Kernel k = node.kernel();
      Session admin = k.openSession(Kernel.ADMIN, Duration.ofMinutes(5));
      k.database().transaction(c -> c.createStatement().executeUpdate("CREATE TABLE t (x int)"));
      k.call(admin, "t.put", Right.WRITE, "t", tx -> tx.update("INSERT INTO t VALUES (1)"));
      long before = postmasterPid(data);
      assertEquals(0, new ProcessBuilder("kill", "-9", Long.toString(before)).start().waitFor());

      long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
      // backends of the dead postmaster may still answer for a moment: wait for the new postmaster
      while (postmasterPid(data) == before || postmasterPid(data) == -1) {
        assertTrue(System.nanoTime() < deadline, "PostgreSQL was not started again");
        Thread.sleep(100);
      }
      long rows = -1;
      while (rows < 0) {
        try {
          rows = k.call(admin, "t.count", Right.READ, "t", tx -> tx.queryLong("SELECT count(*) FROM t"));
        } catch (SyscallException e) {
          assertTrue(System.nanoTime() < deadline, "calls fail after the restart: " + e.getMessage());
          Thread.sleep(100);
        }
      }
      assertEquals(1, rows, "the committed row survived the crash");
      k.call(admin, "t.put", Right.WRITE, "t", tx -> tx.update("INSERT INTO t VALUES (2)"));
      assertEquals(2L, (long) k.call(admin, "t.count", Right.READ, "t", tx -> tx.queryLong("SELECT count(*) FROM t")));
    }
    assertTrue(Files.notExists(data.resolve("pg/postmaster.pid")), "stopped with the node");
  }

  @Test
  void aNodeWhoseDatabaseIsGoneStopsPromptly(@TempDir Path dir) throws Exception {
    int port = TestDatabase.freePort();
    Node owner = Node.boot(NodeConfig.defaults(dir.resolve("a")).withPgPort(port).withPoolSize(4));
    String password = Files.readString(dir.resolve("a/db-password")).strip();
    Node joined;
    try {
      joined = Node.boot(NodeConfig.defaults(dir.resolve("b"))
          .withDatabase("jdbc:postgresql://127.0.0.1:" + port + "/dbos", "postgres", password).withPoolSize(4));
    } finally {
      owner.close(); // and its PostgreSQL with it
    }
    long t0 = System.nanoTime();
    joined.close();
    long seconds = (System.nanoTime() - t0) / 1_000_000_000L;
    // each best-effort step of the stop waited ten seconds for a connection: 35 s and more
    assertTrue(seconds < 15, "stopping took " + seconds + " s");
  }

  /** The pid in postmaster.pid, or -1 while a starting postmaster replaces the file. */
  private static long postmasterPid(Path data) {
    try {
      return Long.parseLong(Files.readAllLines(data.resolve("pg/postmaster.pid")).getFirst().trim());
    } catch (java.io.IOException | RuntimeException e) {
      return -1;
    }
  }
}
