package org.dbos.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.Test;

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
}
