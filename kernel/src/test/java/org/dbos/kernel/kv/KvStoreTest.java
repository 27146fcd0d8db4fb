package org.dbos.kernel.kv;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.dbos.kernel.Node;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.kv.Kv.*;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class KvStoreTest {
  static Node node;
  static KvStore kv;
  static Session admin;

  @BeforeAll
  static void boot() {
    node = TestNode.boot();
    kv = KvStore.start(node.kernel());
    admin = node.kernel().login("admin", node.dataDirectory().adminCredential().orElseThrow());
  }

  @AfterAll
  static void stop() {
    node.close();
  }

  static byte[] b(String s) {
    return s.getBytes(UTF_8);
  }

  static PutResponse put(String k, String v) {
    return kv.put(admin, new PutRequest(b(k), b(v), 0, true, false, false));
  }

  @Test
  void putRangeDeleteAndHistory() {
    long r1 = put("a/1", "x").revision();
    PutResponse p2 = put("a/1", "y");
    assertEquals(r1 + 1, p2.revision());
    assertEquals(1, p2.prevKv().version());
    put("a/2", "z");
    RangeResponse all = kv.range(admin, RangeRequest.of(b("a/"), KeyRanges.prefixEnd(b("a/"))));
    assertEquals(2, all.count());
    assertEquals(2, all.kvs().getFirst().version());
    assertEquals(r1, all.kvs().getFirst().createRevision());
    RangeResponse old = kv.range(admin, new RangeRequest(b("a/1"), null, 0, r1, SortOrder.NONE, SortTarget.KEY,
        false, false, 0, 0, 0, 0));
    assertArrayEquals(b("x"), old.kvs().getFirst().value());
    DeleteResponse d = kv.delete(admin, new DeleteRequest(b("a/"), KeyRanges.prefixEnd(b("a/")), true));
    assertEquals(2, d.deleted());
    assertEquals(0, kv.range(admin, RangeRequest.of(b("a/1"), null)).count());
    DeleteResponse none = kv.delete(admin, new DeleteRequest(b("a/"), KeyRanges.prefixEnd(b("a/")), true));
    assertEquals(d.revision(), none.revision(), "deleting nothing keeps the revision");
    RangeResponse desc = kv.range(admin, new RangeRequest(b("a/"), KeyRanges.prefixEnd(b("a/")), 1, d.revision() - 1,
        SortOrder.DESCEND, SortTarget.MOD, false, false, 0, 0, 0, 0));
    assertTrue(desc.more());
    assertArrayEquals(b("a/2"), desc.kvs().getFirst().key());
  }

  @Test
  void txnAndCompaction() {
    long r = put("t/k", "1").revision();
    var cas = new TxnRequest(List.of(new Compare(b("t/k"), null, Compare.Target.MOD, Compare.Result.EQUAL, r, null)),
        List.of(new PutRequest(b("t/k"), b("2"), 0, false, false, false)), List.of(RangeRequest.of(b("t/k"), null)));
    TxnResponse ok = kv.txn(admin, cas);
    assertTrue(ok.succeeded());
    assertEquals(r + 1, ok.revision());
    TxnResponse no = kv.txn(admin, cas);
    assertFalse(no.succeeded());
    assertEquals(ok.revision(), no.revision());
    var dup = new TxnRequest(List.of(), List.of(new PutRequest(b("t/k"), b("2"), 0, false, false, false),
        new DeleteRequest(b("t/"), KeyRanges.prefixEnd(b("t/")), false)), List.of());
    var e = assertThrows(SyscallException.class, () -> kv.txn(admin, dup));
    assertEquals(Kv.ERR_DUPLICATE_KEY, e.getMessage());
    kv.compact(admin, ok.revision());
    var c = assertThrows(SyscallException.class, () -> kv.range(admin, new RangeRequest(b("t/k"), null, 0, r,
        SortOrder.NONE, SortTarget.KEY, false, false, 0, 0, 0, 0)));
    assertEquals(Kv.ERR_COMPACTED, c.getMessage());
    assertEquals(1, kv.range(admin, new RangeRequest(b("t/k"), null, 0, ok.revision(), SortOrder.NONE, SortTarget.KEY,
        false, false, 0, 0, 0, 0)).count());
  }

  /**
   * A Txn whose Range names a compacted or future revision fails as a whole, like etcd's, which checks
   * every Range on the chosen path against the store before the Txn: its earlier Put is not written and
   * takes no revision. (The Range at current + 1 would read the Txn's own revision; etcd refuses it.)
   */
  @Test
  void txnWithARangeAtABadRevisionWritesNothing() {
    long r0 = put("tf/k", "0").revision();
    kv.compact(admin, r0);
    for (long bad : new long[] {r0 - 1, r0 + 1, r0 + 2}) {
      var txn = new TxnRequest(List.of(), List.of(new PutRequest(b("tf/k"), b("1"), 0, false, false, false),
          new RangeRequest(b("tf/k"), null, 0, bad, SortOrder.NONE, SortTarget.KEY, false, false, 0, 0, 0, 0)),
          List.of());
      var e = assertThrows(SyscallException.class, () -> kv.txn(admin, txn), "range at " + bad);
      assertEquals(bad < r0 ? Kv.ERR_COMPACTED : Kv.ERR_FUTURE_REV, e.getMessage());
      RangeResponse now = kv.range(admin, RangeRequest.of(b("tf/k"), null));
      assertArrayEquals(b("0"), now.kvs().getFirst().value(), "the Put of the failed Txn is not visible");
      assertEquals(r0, now.revision(), "the failed Txn took no revision");
    }
    assertEquals(r0 + 1, put("tf/k", "2").revision(), "the next write takes the next revision");
    assertEquals(r0 + 2, put("tf/k", "3").revision());
  }

  /**
   * A key is a btree entry of kv and kv_history, which PostgreSQL caps at 2,704 bytes: a Put of a
   * longer key (here random, so incompressible) fails alone with INVALID_ARGUMENT and a clear message
   * before writing, among other callers' Puts that commit, alone or in a Txn; a key of the maximum
   * size is written, read, replaced and deleted.
   */
  @Test
  void aKeyTooLargeForTheIndexFailsAloneAndClearly() {
    var rnd = new java.util.Random(7);
    byte[] max = bigKey(rnd, KvStore.MAX_KEY_BYTES);
    long r = kv.put(admin, new PutRequest(max, b("1"), 0, false, false, false)).revision();
    assertEquals(r + 1, kv.put(admin, new PutRequest(max, b("2"), 0, true, false, false)).revision());
    assertArrayEquals(b("2"), kv.range(admin, RangeRequest.of(max, null)).kvs().getFirst().value());
    assertEquals(1, kv.delete(admin, new DeleteRequest(max, null, false)).deleted());
    for (int size : new int[] {KvStore.MAX_KEY_BYTES + 1, 3000, 100_000}) {
      byte[] big = bigKey(rnd, size);
      var small = new ArrayList<java.util.concurrent.CompletableFuture<PutResponse>>();
      java.util.concurrent.CompletableFuture<PutResponse> bad = null;
      for (int i = 0; i < 40; i++) {
        small.add(kv.putAsync(admin, new PutRequest(b("big/" + i), b("v"), 0, false, false, false)));
        if (i == 20) {
          bad = kv.putAsync(admin, new PutRequest(big, b("v"), 0, false, false, false));
        }
      }
      var txn = kv.txnAsync(admin, new TxnRequest(List.of(), List.of(
          new PutRequest(b("big/t"), b("v"), 0, false, false, false), new PutRequest(big, b("v"), 0, false, false, false)),
          List.of()));
      String expected = "key is too large: " + size + " bytes, at most " + KvStore.MAX_KEY_BYTES;
      for (var f : List.of(bad, txn)) {
        var e = assertThrows(java.util.concurrent.CompletionException.class, f::join, "a key of " + size + " bytes");
        var se = assertInstanceOf(SyscallException.class, e.getCause());
        assertEquals(SyscallException.Code.INVALID_ARGUMENT, se.code());
        assertEquals(expected, se.getMessage());
      }
      small.forEach(java.util.concurrent.CompletableFuture::join);
      assertEquals(0, kv.range(admin, RangeRequest.of(b("big/t"), null)).count(), "the failed Txn wrote nothing");
    }
  }

  private static byte[] bigKey(java.util.Random rnd, int size) {
    byte[] k = new byte[size];
    rnd.nextBytes(k);
    System.arraycopy(b("big/"), 0, k, 0, 4);
    return k;
  }

  /**
   * A Put with ignore_value keeps the value at a new revision (and its version grows); Compare LESS
   * holds or not by the numbers and bytes; a watch on [h/b, h/d), not a prefix, gets the events of
   * h/b and h/c only; and the kv_keys view, read as {@code dbos sql} reads it, shows keys and values as
   * text.
   */
  @Test
  void ignoreValueCompareLessRangeWatchAndKvKeysView() throws Exception {
    long r = put("h/b", "v1").revision();
    var got = new CopyOnWriteArrayList<Event>();
    var w = kv.watches().watch(admin, b("h/b"), b("h/d"), r + 1, false, false, false, false, sink(got));
    PutResponse kept = kv.put(admin, new PutRequest(b("h/b"), null, 0, true, true, false));
    assertEquals(r + 1, kept.revision());
    assertArrayEquals(b("v1"), kept.prevKv().value());
    KeyValue now = kv.range(admin, RangeRequest.of(b("h/b"), null)).kvs().getFirst();
    assertArrayEquals(b("v1"), now.value(), "ignore_value keeps the value");
    assertEquals(List.of(r + 1, 2L, r), List.of(now.modRevision(), now.version(), now.createRevision()));

    var less = new TxnRequest(List.of(
        new Compare(b("h/b"), null, Compare.Target.VERSION, Compare.Result.LESS, 3, null),
        new Compare(b("h/b"), null, Compare.Target.VALUE, Compare.Result.LESS, 0, b("v2")),
        new Compare(b("h/none"), null, Compare.Target.CREATE, Compare.Result.LESS, 1, null)),
        List.of(new PutRequest(b("h/c"), b("yes"), 0, false, false, false)), List.of());
    assertTrue(kv.txn(admin, less).succeeded());
    var notLess = new TxnRequest(List.of(new Compare(b("h/b"), null, Compare.Target.MOD, Compare.Result.LESS, r + 1, null)),
        List.of(new PutRequest(b("h/c"), b("no"), 0, false, false, false)), List.of());
    assertFalse(kv.txn(admin, notLess).succeeded(), "mod revision r + 1 is not less than itself");

    put("h/a", "out");
    put("h/d", "out");
    long last = put("h/c", "last").revision();
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (got.isEmpty() || got.getLast().kv().modRevision() < last) {
      assertTrue(System.nanoTime() < deadline, "the events arrived: " + got);
      Thread.sleep(10);
    }
    kv.watches().cancel(w);
    assertEquals(List.of("h/b", "h/c", "h/c"), got.stream().map(e -> new String(e.kv().key(), UTF_8)).toList());

    var sql = new org.dbos.kernel.sql.SqlConsole(node.kernel()).run(admin,
        "select key, version, size, value from kv_keys where key like 'h/%' order by key", false, 100);
    assertEquals(List.of("key", "version", "size", "value"), sql.columns());
    assertEquals(List.of(List.of("h/a", "1", "3", "out"), List.of("h/b", "2", "2", "v1"), List.of("h/c", "2", "4", "last"),
        List.of("h/d", "1", "3", "out")), sql.rows());
  }

  @Test
  void concurrentPutsGetGapFreeRevisions() throws Exception {
    try (var pool = Executors.newFixedThreadPool(32)) {
      var fs = new ArrayList<Future<Long>>();
      for (int i = 0; i < 2000; i++) {
        int n = i;
        fs.add(pool.submit(() -> put("c/" + n, "v").revision()));
      }
      var revs = new ArrayList<Long>();
      for (var f : fs) {
        revs.add(f.get());
      }
      Collections.sort(revs);
      for (int i = 1; i < revs.size(); i++) {
        assertTrue(revs.get(i) > revs.get(i - 1), "revisions unique");
      }
    }
  }

  @Test
  void leaseExpiryDeletesKeysAtOneRevision() throws Exception {
    LeaseGrant g = kv.grant(admin, 0, 2);
    long first = kv.put(admin, new PutRequest(b("l/1"), b("v"), g.id(), false, false, false)).revision();
    kv.put(admin, new PutRequest(b("l/2"), b("v"), g.id(), false, false, false));
    assertEquals(2, kv.timeToLive(admin, g.id(), true).keys().size());
    var e = assertThrows(SyscallException.class, () -> kv.grant(admin, g.id(), 5));
    assertEquals(Kv.ERR_LEASE_EXISTS, e.getMessage());
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (kv.range(admin, RangeRequest.of(b("l/"), KeyRanges.prefixEnd(b("l/")))).count() > 0) {
      assertTrue(System.nanoTime() < deadline, "lease expired");
      Thread.sleep(50);
    }
    assertEquals(-1, kv.timeToLive(admin, g.id(), false).ttl());
    assertEquals(0, kv.keepAlive(admin, g.id()));
    var got = new CopyOnWriteArrayList<Event>();
    var w = kv.watches().watch(admin, b("l/"), KeyRanges.prefixEnd(b("l/")), first, false, false, false, false, sink(got));
    while (got.size() < 4) {
      assertTrue(System.nanoTime() < deadline, "the puts and deletions replayed: " + got);
      Thread.sleep(10);
    }
    kv.watches().cancel(w);
    assertEquals(List.of(Event.Type.PUT, Event.Type.PUT, Event.Type.DELETE, Event.Type.DELETE),
        got.stream().map(Event::type).toList());
    assertEquals(got.get(2).kv().modRevision(), got.get(3).kv().modRevision(), "both keys deleted at one revision");
  }

  /**
   * A lease past its expiry that no sweep has revoked yet is dead to its clients, as in etcd: KeepAlive
   * answers 0 (not found) without renewing it, TimeToLive −1, and the next sweep deletes its keys.
   * (A store without a sweeper, on its own database; the expiry is moved into the past.)
   */
  @Test
  void keepAliveDoesNotReviveAnExpiredLease() {
    var db = org.dbos.kernel.testing.TestDatabase.fresh();
    try (Node n = TestNode.boot(db); KvStore s = new KvStore(n.kernel(), null, null)) {
      Session sys = n.kernel().system();
      long id = s.grant(sys, 0, 60).id();
      s.put(sys, new PutRequest(b("x/1"), b("v"), id, false, false, false));
      assertEquals(60, s.keepAlive(sys, id));
      n.kernel().database().transaction(c -> c.createStatement()
          .executeUpdate("UPDATE kv_leases SET expires_at = now() - interval '1 second' WHERE id = " + id));
      assertEquals(0, s.keepAlive(sys, id), "an expired lease is not renewed");
      assertEquals(-1, s.timeToLive(sys, id, true).ttl());
      assertEquals(1, s.range(sys, RangeRequest.of(b("x/1"), null)).count(), "not swept yet");
      s.sweepExpired();
      assertEquals(0, s.range(sys, RangeRequest.of(b("x/1"), null)).count(), "the sweep revoked the lease");
      assertEquals(List.of(), s.leases(sys));
    }
  }

  /** Expiry is on the database clock: a lease granted on a node that stopped is enforced by the next one. */
  @Test
  void leasesOutliveTheirNode() throws Exception {
    var db = org.dbos.kernel.testing.TestDatabase.fresh();
    long id;
    try (Node a = TestNode.boot(db)) {
      KvStore s = KvStore.start(a.kernel());
      id = s.grant(a.kernel().system(), 0, 3).id();
      s.put(a.kernel().system(), new PutRequest(b("r/k"), b("v"), id, false, false, false));
    }
    try (Node b = TestNode.boot(db)) {
      KvStore s = KvStore.start(b.kernel());
      Session sys = b.kernel().system();
      assertTrue(s.timeToLive(sys, id, true).ttl() >= 0, "lease survived the restart");
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (s.range(sys, RangeRequest.of(b("r/k"), null)).count() > 0) {
        assertTrue(System.nanoTime() < deadline, "the lease expired on the new node");
        Thread.sleep(50);
      }
      assertEquals(-1, s.timeToLive(sys, id, false).ttl());
    }
  }

  @Test
  void watchReplaysAndFollows() throws Exception {
    long start = put("w/a", "1").revision();
    put("w/b", "2");
    var got = new CopyOnWriteArrayList<Event>();
    var w = kv.watches().watch(admin, b("w/"), KeyRanges.prefixEnd(b("w/")), start, true, false, false, false,
        new Watches.Sink() {
          public void events(List<Event> events, long revision) {
            got.addAll(events);
          }

          public void compacted(long compactRevision) {}

          public void denied() {}
        });
    kv.delete(admin, new DeleteRequest(b("w/a"), null, false));
    put("w/c", "3");
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (got.size() < 4) {
      assertTrue(System.nanoTime() < deadline, "events arrived: " + got);
      Thread.sleep(10);
    }
    assertEquals(Event.Type.DELETE, got.get(2).type());
    assertNotNull(got.get(2).prevKv());
    for (int i = 1; i < got.size(); i++) {
      assertTrue(got.get(i).kv().modRevision() > got.get(i - 1).kv().modRevision());
    }
    kv.watches().cancel(w);
  }

  /**
   * A watch holds its right for as long as it lives: revoking the role that granted it, or closing the
   * session, cancels it (within the hub's re-check period) and nothing more is delivered. Both audited.
   */
  /** An exact grant covers its one key; a prefix grant covers its keys and the ranges within it. */
  @Test
  void exactAndPrefixGrantsOverKeysRangesAndTxns() {
    var p = node.kernel().principals();
    p.create(admin, "exacting", "user", "pw-exacting", null, null, false);
    p.grant(admin, "exacting", new org.dbos.kernel.security.Principals.Grant(org.dbos.kernel.Right.WRITE, "kv:ex/key", true));
    p.grant(admin, "exacting", org.dbos.kernel.Right.READ, "kv:ex/pre/");
    Session s = node.kernel().login("exacting", "pw-exacting");
    kv.put(s, new PutRequest(b("ex/key"), b("1"), 0, false, false, false));
    for (String k : List.of("ex/key2", "ex/ke", "ex/key\\*")) {
      assertThrows(SyscallException.class, () -> kv.put(s, new PutRequest(b(k), b("1"), 0, false, false, false)), k);
    }
    var prefixDelete = new DeleteRequest(b("ex/key"), KeyRanges.prefixEnd(b("ex/key")), false);
    assertEquals(SyscallException.Code.PERMISSION_DENIED,
        assertThrows(SyscallException.class, () -> kv.delete(s, prefixDelete)).code(), "a range is not the key");
    var twoKeys = new TxnRequest(List.of(), List.of(new PutRequest(b("ex/key"), b("2"), 0, false, false, false),
        new PutRequest(b("ex/kez"), b("2"), 0, false, false, false)), List.of());
    assertThrows(SyscallException.class, () -> kv.txn(s, twoKeys));
    var oneKey = new TxnRequest(List.of(new Compare(b("ex/key"), null, Compare.Target.VERSION, Compare.Result.GREATER, 0, null)),
        List.of(new PutRequest(b("ex/key"), b("3"), 0, false, false, false)), List.of());
    assertTrue(kv.txn(s, oneKey).succeeded());
    put("ex/pre/a", "1");
    assertEquals(1, kv.range(s, RangeRequest.of(b("ex/pre/a"), null)).count());
    assertEquals(1, kv.range(s, RangeRequest.of(b("ex/pre/"), KeyRanges.prefixEnd(b("ex/pre/")))).count());
    assertEquals(1, kv.range(s, RangeRequest.of(b("ex/pre/a"), b("ex/pre/b"))).count());
    assertThrows(SyscallException.class, () -> kv.range(s, RangeRequest.of(b("ex/pre"), KeyRanges.prefixEnd(b("ex/pre")))));
    assertThrows(SyscallException.class, () -> kv.range(s, RangeRequest.of(b("ex/pre/a"), KeyRanges.ZERO)), "from-key");
  }

  @Test
  void watchEndsWhenItsRightGoesOrItsSessionCloses() throws Exception {
    var p = node.kernel().principals();
    p.create(admin, "watcher", "user", "pw-watcher", null, null, false);
    p.create(admin, "wreaders", "role", null, null, null, false);
    p.grant(admin, "wreaders", org.dbos.kernel.Right.READ, "kv:wr/");
    p.grantRole(admin, "watcher", "wreaders");
    Session s = node.kernel().login("watcher", "pw-watcher");
    var got = new CopyOnWriteArrayList<Event>();
    var denied = new java.util.concurrent.CountDownLatch(2);
    Watches.Sink sink = new Watches.Sink() {
      public void events(List<Event> events, long revision) {
        got.addAll(events);
      }

      public void compacted(long compactRevision) {}

      public void denied() {
        denied.countDown();
      }
    };
    kv.watches().watch(s, b("wr/"), KeyRanges.prefixEnd(b("wr/")), 0, false, false, false, false, sink);
    put("wr/a", "1");
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (got.isEmpty()) {
      assertTrue(System.nanoTime() < deadline, "the watch delivers while its right holds");
      Thread.sleep(10);
    }
    p.revokeRole(admin, "watcher", "wreaders");
    deadline = System.nanoTime() + 5_000_000_000L;
    while (denied.getCount() == 2) {
      assertTrue(System.nanoTime() < deadline, "the watch is canceled once its right is revoked");
      Thread.sleep(10);
    }
    put("wr/b", "2");
    p.grantRole(admin, "watcher", "wreaders");
    kv.watches().watch(s, b("wr/"), KeyRanges.prefixEnd(b("wr/")), 0, false, false, false, false, sink);
    node.kernel().closeSession(s);
    assertTrue(denied.await(5, java.util.concurrent.TimeUnit.SECONDS), "the watch is canceled once its session closes");
    assertEquals(1, got.size(), "nothing is delivered after the cancel: " + got);
    long audited = node.kernel().database().transaction(c -> {
      try (var rs = c.createStatement().executeQuery(
          "SELECT count(*) FROM audit WHERE principal = 'watcher' AND call = 'kv.watch' AND outcome = 'denied'")) {
        rs.next();
        return rs.getLong(1);
      }
    });
    assertEquals(2, audited);
  }

  /**
   * A write NOTIFYs other nodes only while a hub elsewhere has watchers (V33's kv_watch_hubs): then a
   * watch on another node is woken by it; with no watcher elsewhere the commit sends nothing.
   */
  @Test
  void writesNotifyOnlyWhileAnotherNodeWatches() throws Exception {
    var db = org.dbos.kernel.testing.TestDatabase.fresh();
    try (Node a = TestNode.boot(db); Node b = TestNode.boot(db);
         var listen = java.sql.DriverManager.getConnection(db.url(), db.user(), db.password())) {
      KvStore sa = KvStore.start(a.kernel());
      KvStore sb = KvStore.start(b.kernel());
      Session onA = a.kernel().system();
      listen.createStatement().execute("LISTEN " + KvStore.CHANNEL);
      var pg = listen.unwrap(org.postgresql.PGConnection.class);
      sa.put(onA, new PutRequest(b("n/1"), b("v"), 0, false, false, false));
      sb.put(b.kernel().system(), new PutRequest(b("n/2"), b("v"), 0, false, false, false));
      assertEquals(0, pg.getNotifications(300).length, "no watcher anywhere: no NOTIFY");

      var got = new CopyOnWriteArrayList<Event>();
      var w = sb.watches().watch(b.kernel().system(), b("n/"), KeyRanges.prefixEnd(b("n/")), 0, false, false, false,
          false, new Watches.Sink() {
            public void events(List<Event> events, long revision) {
              got.addAll(events);
            }

            public void compacted(long compactRevision) {}

            public void denied() {}
          });
      awaitHubs(a, 1);
      sb.put(b.kernel().system(), new PutRequest(b("n/3"), b("v"), 0, false, false, false));
      assertEquals(0, pg.getNotifications(300).length, "the watching node's own write needs no NOTIFY");
      long rev = sa.put(onA, new PutRequest(b("n/4"), b("v"), 0, false, false, false)).revision();
      var n = pg.getNotifications(5000);
      assertTrue(n.length > 0, "a write on another node NOTIFYs the watching one");
      assertEquals(Long.toString(rev), n[n.length - 1].getParameter());
      long deadline = System.nanoTime() + 5_000_000_000L;
      while (got.stream().noneMatch(e -> e.kv().modRevision() == rev)) {
        assertTrue(System.nanoTime() < deadline, "the other node's write reached the watch: " + got);
        Thread.sleep(10);
      }

      sb.watches().cancel(w);
      awaitHubs(a, 0);
      sa.put(onA, new PutRequest(b("n/5"), b("v"), 0, false, false, false));
      assertEquals(0, pg.getNotifications(300).length, "the watch is gone: no NOTIFY");
    }
  }

  /**
   * 32 callers, then the same on two nodes sharing one database, over overlapping keys: whatever order
   * their batches reach the clock in, every revision is used exactly once, every acknowledged Put is the
   * event at its revision (with the right previous value, version and create revision, the same live as
   * replayed from history), refused Puts among them take no revision, and one node's answers, while it
   * writes alone, come in revision order. (Guards any change to how the writer batches and answers.)
   * Run with the Put statements of PostgreSQL 18 (the upsert returns the rows it replaced) and with
   * those before it ({@code returningOld} false).
   */
  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void concurrentBatchesKeepRevisionsAnswersAndEventsInOrder(boolean returningOld) throws Exception {
    var db = org.dbos.kernel.testing.TestDatabase.fresh();
    var sweep = java.time.Duration.ofMillis(250);
    try (Node a = TestNode.boot(db); Node b = TestNode.boot(db);
         KvStore sa = new KvStore(a.kernel(), sweep, returningOld); KvStore sb = new KvStore(b.kernel(), sweep, returningOld)) {
      Session onA = a.kernel().system();
      Session onB = b.kernel().system();
      Session adminA = a.kernel().login("admin", a.dataDirectory().adminCredential().orElseThrow());
      a.kernel().principals().create(adminA, "nobody", "user", "pw-nobody", null, null, false);
      Session nobody = a.kernel().login("nobody", "pw-nobody");
      long start = sa.revision(onA);
      var live = new CopyOnWriteArrayList<Event>();
      sa.watches().watch(onA, b("o/"), KeyRanges.prefixEnd(b("o/")), start + 1, true, false, false, false, sink(live));
      var acked = new java.util.concurrent.ConcurrentHashMap<Long, PutResponse>();
      var values = new java.util.concurrent.ConcurrentHashMap<Long, String>();
      var answeredOnA = new CopyOnWriteArrayList<Long>();
      int puts = 0;
      for (boolean bothNodes : new boolean[] {false, true}) {
        try (var pool = Executors.newFixedThreadPool(32)) {
          var fs = new ArrayList<Future<?>>();
          for (int t = 0; t < 32; t++) {
            int thread = t;
            KvStore store = bothNodes && t % 2 == 1 ? sb : sa;
            Session s = store == sb ? onB : onA;
            fs.add(pool.submit(() -> {
              long mine = 0;
              for (int i = 0; i < 40; i++) {
                String key = "o/" + (thread * 7 + i) % 12;
                String value = thread + "." + i + (bothNodes ? "b" : "a");
                if (i % 13 == 5) {
                  var denied = store.putAsync(nobody, new PutRequest(b(key), b("x"), 0, true, false, false));
                  assertThrows(java.util.concurrent.CompletionException.class, denied::join, "refused");
                }
                var f = store.putAsync(s, new PutRequest(b(key), b(value), 0, true, false, false));
                f.whenComplete((r, e) -> {
                  if (r != null && !bothNodes && Thread.currentThread().getName().startsWith("dbos-kv-writer")) {
                    answeredOnA.add(r.revision());
                  }
                });
                PutResponse r = f.join();
                assertTrue(r.revision() > mine, "a caller's next put gets a later revision");
                mine = r.revision();
                assertNull(acked.put(r.revision(), r), "revision " + r.revision() + " answered twice");
                values.put(r.revision(), value);
              }
              return null;
            }));
          }
          for (var f : fs) {
            f.get();
          }
        }
        puts += 32 * 40;
        if (!bothNodes) {
          var order = List.copyOf(answeredOnA);
          assertTrue(order.size() > 32 * 40 / 2, "most answers came from the writer threads: " + order.size());
          for (int i = 1; i < order.size(); i++) {
            assertTrue(order.get(i) > order.get(i - 1), "answers in revision order: " + order.subList(i - 1, i + 1));
          }
        }
      }
      assertEquals(start + puts, sa.revision(onA), "refused puts took no revision");
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (live.size() < puts) {
        assertTrue(System.nanoTime() < deadline, "all events arrived: " + live.size() + " of " + puts);
        Thread.sleep(10);
      }
      Thread.sleep(100);
      var replay = new CopyOnWriteArrayList<Event>();
      sb.watches().watch(onB, b("o/"), KeyRanges.prefixEnd(b("o/")), start + 1, true, false, false, false, sink(replay));
      while (replay.size() < puts) {
        assertTrue(System.nanoTime() < deadline, "the replay arrived: " + replay.size() + " of " + puts);
        Thread.sleep(10);
      }
      assertEquals(puts, live.size(), "no event twice");
      var latest = new java.util.HashMap<String, KeyValue>();
      for (int i = 0; i < puts; i++) {
        Event e = live.get(i);
        long rev = start + 1 + i;
        assertEquals(rev, e.kv().modRevision(), "every revision once, in order");
        String key = new String(e.kv().key(), UTF_8);
        assertEquals(values.get(rev), new String(e.kv().value(), UTF_8), "the acknowledged value at " + rev);
        KeyValue before = latest.put(key, e.kv());
        assertEquals(before, e.prevKv(), "previous value at " + rev);
        assertEquals(before, acked.get(rev).prevKv(), "prev_kv answered at " + rev);
        assertEquals(before == null ? 1 : before.version() + 1, e.kv().version(), "version at " + rev);
        assertEquals(before == null ? rev : before.createRevision(), e.kv().createRevision(), "create revision at " + rev);
        assertEquals(e, replay.get(i), "live and replayed event at " + rev);
      }
      for (var k : latest.entrySet()) {
        assertEquals(k.getValue().modRevision(), sb.range(onB, RangeRequest.of(b(k.getKey()), null)).kvs().getFirst()
            .modRevision(), "the last put of " + k.getKey() + " is the one read");
      }
    }
  }

  private static Watches.Sink sink(List<Event> into) {
    return new Watches.Sink() {
      public void events(List<Event> events, long revision) {
        into.addAll(events);
      }

      public void compacted(long compactRevision) {}

      public void denied() {}
    };
  }

  private static void awaitHubs(Node n, long count) throws InterruptedException {
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (n.kernel().database().transaction(c -> {
      try (var rs = c.createStatement().executeQuery("SELECT count(*) FROM kv_watch_hubs")) {
        rs.next();
        return rs.getLong(1);
      }
    }) != count) {
      assertTrue(System.nanoTime() < deadline, "kv_watch_hubs holds " + count + " hub(s)");
      Thread.sleep(20);
    }
  }
}
