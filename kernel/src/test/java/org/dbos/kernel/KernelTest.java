package org.dbos.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class KernelTest {
  static Node node;
  static Kernel kernel;

  @BeforeAll
  static void boot() {
    node = TestNode.boot();
    kernel = node.kernel();
    kernel.database().transaction(c -> c.createStatement().executeUpdate(
        "CREATE TABLE IF NOT EXISTS scratch (k text PRIMARY KEY, v int)"));
  }

  @AfterAll
  static void close() {
    node.close();
  }

  /** Audit rows for one object, as "call outcome principal". */
  static List<String> audit(String object) {
    return kernel.database().transaction(c -> {
      try (var ps = c.prepareStatement("SELECT call, outcome, principal FROM audit WHERE object = ? ORDER BY id")) {
        ps.setString(1, object);
        var rs = ps.executeQuery();
        var out = new java.util.ArrayList<String>();
        while (rs.next()) {
          out.add(rs.getString(1) + " " + rs.getString(2) + " " + rs.getString(3));
        }
        return out;
      }
    });
  }

  static Session newUser(String name) {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    kernel.principals().create(admin, name, "user", "pw-" + name, null, null, false);
    return kernel.login(name, "pw-" + name);
  }

  @Test
  void allowedCallCommitsWorkAndAuditTogether() {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    int n = kernel.call(admin, "scratch.put", Right.WRITE, "scratch:a",
        tx -> tx.update("INSERT INTO scratch VALUES ('a', 1)"));
    assertEquals(1, n);
    assertEquals(List.of("scratch.put ok admin"), audit("scratch:a"));
  }

  @Test
  void deniedCallIsAuditedAndDoesNoWork() {
    Session bob = newUser("bob");
    var e = assertThrows(SyscallException.class, () -> kernel.call(bob, "scratch.put", Right.WRITE, "scratch:b",
        tx -> tx.update("INSERT INTO scratch VALUES ('b', 1)")));
    assertEquals(SyscallException.Code.PERMISSION_DENIED, e.code());
    assertTrue(e.getMessage().contains("lacks WRITE on scratch:b"), e.getMessage());
    assertEquals(List.of("scratch.put denied bob"), audit("scratch:b"));
    assertEquals(0L, count("SELECT count(*) FROM scratch WHERE k = 'b'"));
  }

  @Test
  void grantByPrefixAllowsAndRevokeTakesEffectAtOnce() {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    Session carol = newUser("carol");
    kernel.principals().grant(admin, "carol", Right.WRITE, "scratch:c/");
    kernel.call(carol, "scratch.put", Right.WRITE, "scratch:c/1", tx -> tx.update("INSERT INTO scratch VALUES ('c1', 1)"));
    assertThrows(SyscallException.class, () -> kernel.call(carol, "scratch.put", Right.WRITE, "scratch:d",
        tx -> tx.update("INSERT INTO scratch VALUES ('d', 1)")));
    kernel.principals().revoke(admin, "carol", Right.WRITE, "scratch:c/");
    assertThrows(SyscallException.class, () -> kernel.call(carol, "scratch.put", Right.WRITE, "scratch:c/2",
        tx -> tx.update("INSERT INTO scratch VALUES ('c2', 1)")));
    assertEquals(List.of("scratch.put ok carol"), audit("scratch:c/1"));
    assertEquals(List.of("scratch.put denied carol"), audit("scratch:c/2"));
  }

  @Test
  void grantPrefixIsLiteralNotAPattern() {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    Session dora = newUser("dora");
    kernel.principals().grant(admin, "dora", Right.WRITE, "scratch:_%\\");
    kernel.call(dora, "scratch.put", Right.WRITE, "scratch:_%\\1", tx -> null);
    for (String other : List.of("scratch:a%\\1", "scratch:_a\\1", "scratch:_%a", "scratch:_%")) {
      var e = assertThrows(SyscallException.class, () -> kernel.call(dora, "scratch.put", Right.WRITE, other, tx -> null));
      assertEquals(SyscallException.Code.PERMISSION_DENIED, e.code(), other);
      assertEquals(List.of("scratch.put denied dora"), audit(other));
    }
    assertEquals(List.of("scratch.put ok dora"), audit("scratch:_%\\1"));
  }

  @Test
  void sessionOpenedDuringAGrantCarriesIt() throws Exception {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    kernel.principals().create(admin, "fern", "user", "pw-fern", null, null, false);
    Session fern = loginDuringGrantInFlight("fern", "fern", "scratch:fern/");
    kernel.call(fern, "scratch.put", Right.WRITE, "scratch:fern/1", tx -> null);
  }

  @Test
  void sessionOpenedDuringAGrantToOneOfItsRolesCarriesIt() throws Exception {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    kernel.principals().create(admin, "gina", "user", "pw-gina", null, null, false);
    kernel.principals().create(admin, "crew", "role", null, null, null, false);
    kernel.principals().grantRole(admin, "gina", "crew");
    Session gina = loginDuringGrantInFlight("crew", "gina", "scratch:crew/");
    kernel.call(gina, "scratch.put", Right.WRITE, "scratch:crew/1", tx -> null);
    kernel.principals().revokeRole(admin, "gina", "crew");
    assertThrows(SyscallException.class, () -> kernel.call(gina, "scratch.put", Right.WRITE, "scratch:crew/2", tx -> null));
  }

  /**
   * Logs {@code user} in (password "pw-" + user) while a WRITE grant on {@code prefix} to {@code
   * grantee} is in flight, as Principals.grant makes it (grantee locked, grant inserted, not yet
   * committed); checks the login waits for it.
   */
  private static Session loginDuringGrantInFlight(String grantee, String user, String prefix) throws Exception {
    try (var c = kernel.database().connection()) {
      c.setAutoCommit(false);
      try (var lock = c.prepareStatement("SELECT id FROM principals WHERE name = ? FOR NO KEY UPDATE");
           var grant = c.prepareStatement("INSERT INTO grants (principal_id, right_name, object_prefix) "
               + "SELECT id, 'WRITE', ? FROM principals WHERE name = ?")) {
        lock.setString(1, grantee);
        lock.execute();
        grant.setString(1, prefix);
        grant.setString(2, grantee);
        grant.execute();
      }
      var login = java.util.concurrent.CompletableFuture.supplyAsync(() -> kernel.login(user, "pw-" + user));
      // the login must block on the grantee's row lock: wait until the database shows it waiting
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") == 0) {
        assertTrue(!login.isDone(), "the session must wait for the grant in flight");
        assertTrue(System.nanoTime() < deadline, "no lock wait seen");
        Thread.onSpinWait();
      }
      c.commit();
      return login.get(10, java.util.concurrent.TimeUnit.SECONDS);
    }
  }

  @Test
  void failingBodyRollsBackAndIsAuditedAsError() {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    assertThrows(SyscallException.class, () -> kernel.call(admin, "scratch.put", Right.WRITE, "scratch:e", tx -> {
      tx.update("INSERT INTO scratch VALUES ('e', 1)");
      throw SyscallException.invalid("changed my mind");
    }));
    assertEquals(0L, count("SELECT count(*) FROM scratch WHERE k = 'e'"));
    assertEquals(List.of("scratch.put error admin"), audit("scratch:e"));
  }

  @Test
  void sqlErrorInBodyIsTranslated() {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    var e = assertThrows(SyscallException.class, () -> kernel.call(admin, "scratch.put", Right.WRITE, "scratch:f",
        tx -> tx.update("INSERT INTO scratch VALUES ('f', 'not a number')")));
    assertEquals(SyscallException.Code.INVALID_ARGUMENT, e.code());
    assertEquals(List.of("scratch.put error admin"), audit("scratch:f"));
  }

  @Test
  void closedSessionAndDisabledPrincipalAreRefused() {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    Session dave = newUser("dave");
    kernel.principals().grant(admin, "dave", Right.READ, "");
    kernel.call(dave, "scratch.get", Right.READ, "scratch:g", tx -> null);
    kernel.closeSession(dave);
    var e = assertThrows(SyscallException.class, () -> kernel.call(dave, "scratch.get", Right.READ, "scratch:g", tx -> null));
    assertTrue(e.getMessage().contains("closed or expired"), e.getMessage());
    var w = assertThrows(SyscallException.class, () -> kernel.call(dave, "scratch.put", Right.WRITE, "scratch:g", tx -> null));
    assertTrue(w.getMessage().contains("closed or expired"), w.getMessage());

    Session dave2 = kernel.login("dave", "pw-dave");
    kernel.principals().setDisabled(admin, "dave", true);
    assertThrows(SyscallException.class, () -> kernel.call(dave2, "scratch.get", Right.READ, "scratch:g", tx -> null));
    assertThrows(SyscallException.class, () -> kernel.login("dave", "pw-dave"));
  }

  @Test
  void emptyPasswordIsRefused() {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    var e = assertThrows(SyscallException.class, () -> kernel.principals().create(admin, "hana", "user", " ", null, null, false));
    assertEquals(SyscallException.Code.INVALID_ARGUMENT, e.code());
    kernel.principals().create(admin, "hana", "user", "pw-hana", null, null, false);
    e = assertThrows(SyscallException.class, () -> kernel.principals().setSecret(admin, "hana", ""));
    assertEquals(SyscallException.Code.INVALID_ARGUMENT, e.code());
    kernel.login("hana", "pw-hana");
  }

  @Test
  void wrongPasswordIsDeniedAndAudited() {
    newUser("erin");
    var e = assertThrows(SyscallException.class, () -> kernel.login("erin", "wrong"));
    assertEquals(SyscallException.Code.PERMISSION_DENIED, e.code());
    assertEquals(List.of("principal.create ok admin", "session.login ok erin", "session.login denied erin"),
        audit("principal:erin"));
    assertThrows(SyscallException.class, () -> kernel.login("nobody", "x"));
  }

  @Test
  void serializationFailureReRunsTheWholeCallOnce() {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    var attempts = new java.util.concurrent.atomic.AtomicInteger();
    int n = kernel.call(admin, "scratch.put", Right.WRITE, "scratch:retry", tx -> {
      tx.update("INSERT INTO scratch VALUES ('retry', 1)");
      if (attempts.incrementAndGet() < 3) {
        tx.update("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'simulated conflict'; END $$");
      }
      return 7;
    });
    assertEquals(7, n);
    assertEquals(3, attempts.get());
    assertEquals(1L, count("SELECT count(*) FROM scratch WHERE k = 'retry'"));
    assertEquals(List.of("scratch.put ok admin"), audit("scratch:retry"));
  }

  @Test
  void concurrentReadModifyWriteCallsAreExact() throws Exception {
    Session admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    kernel.call(admin, "scratch.put", Right.WRITE, "scratch:ctr", tx -> tx.update("INSERT INTO scratch VALUES ('ctr', 0)"));
    int threads = 8;
    int perThread = 25;
    try (var pool = java.util.concurrent.Executors.newFixedThreadPool(threads)) {
      var futures = new java.util.ArrayList<java.util.concurrent.Future<?>>();
      for (int t = 0; t < threads; t++) {
        futures.add(pool.submit(() -> {
          for (int i = 0; i < perThread; i++) {
            kernel.call(admin, "scratch.incr", Right.WRITE, "scratch:ctr", tx -> {
              long v = tx.queryLong("SELECT v FROM scratch WHERE k = 'ctr' FOR UPDATE");
              return tx.update("UPDATE scratch SET v = ? WHERE k = 'ctr'", (int) v + 1);
            });
          }
        }));
      }
      for (var f : futures) {
        f.get();
      }
    }
    assertEquals((long) threads * perThread, count("SELECT v FROM scratch WHERE k = 'ctr'"));
    assertEquals((long) threads * perThread, count("SELECT count(*) FROM audit_log WHERE call = 'scratch.incr'"));
  }

  @Test
  void sessionTtlIsEnforcedByTheDatabaseClock() throws Exception {
    Session s = kernel.openSession("admin", Duration.ofSeconds(1));
    kernel.call(s, "scratch.get", Right.READ, "scratch:ttl", tx -> null);
    kernel.database().transaction(c -> c.createStatement().executeUpdate(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = '" + s.id() + "'"));
    assertThrows(SyscallException.class, () -> kernel.call(s, "scratch.get", Right.READ, "scratch:ttl", tx -> null));
  }

  static long count(String sql) {
    return kernel.database().transaction(c -> {
      var rs = c.createStatement().executeQuery(sql);
      rs.next();
      return rs.getLong(1);
    });
  }
}
