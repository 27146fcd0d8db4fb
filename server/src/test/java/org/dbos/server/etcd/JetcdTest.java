package org.dbos.server.etcd;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.*;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.LeaseOption;
import io.etcd.jetcd.options.PutOption;
import io.etcd.jetcd.options.WatchOption;
import io.etcd.jetcd.watch.WatchEvent;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.Node;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** jetcd (the Java etcd client) against DBOS: KV, Txn, Watch, Lease; and two nodes acting as one etcd. */
class JetcdTest {
  static Node node;
  static EtcdServer etcd;
  static Client client;

  @BeforeAll
  static void start() {
    node = TestNode.boot();
    etcd = EtcdServer.start(node.kernel(), "127.0.0.1", 0);
    client = Client.builder().endpoints("http://" + etcd.address()).build();
  }

  @AfterAll
  static void stop() {
    client.close();
    etcd.close();
    node.close();
  }

  static ByteSequence b(String s) {
    return ByteSequence.from(s, UTF_8);
  }

  @Test
  void kvAndTxn() throws Exception {
    var kv = client.getKVClient();
    long r1 = kv.put(b("/j/a"), b("1")).get().getHeader().getRevision();
    var p2 = kv.put(b("/j/a"), b("2"), PutOption.builder().withPrevKV().build()).get();
    assertEquals("1", p2.getPrevKv().getValue().toString(UTF_8));
    kv.put(b("/j/b"), b("3")).get();
    var all = kv.get(b("/j/"), GetOption.builder().isPrefix(true).build()).get();
    assertEquals(2, all.getCount());
    assertEquals(2, all.getKvs().getFirst().getVersion());
    assertEquals("1", kv.get(b("/j/a"), GetOption.builder().withRevision(r1).build()).get().getKvs().getFirst()
        .getValue().toString(UTF_8));
    TxnResponse t = kv.txn().If(new Cmp(b("/j/a"), Cmp.Op.EQUAL, CmpTarget.version(2)))
        .Then(Op.put(b("/j/c"), b("4"), PutOption.DEFAULT), Op.get(b("/j/a"), GetOption.DEFAULT))
        .Else(Op.delete(b("/j/a"), DeleteOption.DEFAULT)).commit().get();
    assertTrue(t.isSucceeded());
    assertEquals(1, t.getPutResponses().size());
    assertEquals("2", t.getGetResponses().getFirst().getKvs().getFirst().getValue().toString(UTF_8));
    var d = kv.delete(b("/j/"), DeleteOption.builder().isPrefix(true).withPrevKV(true).build()).get();
    assertEquals(3, d.getDeleted());
    assertEquals(3, d.getPrevKvs().size());
  }

  @Test
  void watchSeesEventsInOrderWithPrevKv() throws Exception {
    var kv = client.getKVClient();
    long start = kv.put(b("/jw/x"), b("0")).get().getHeader().getRevision();
    var events = new CopyOnWriteArrayList<WatchEvent>();
    var done = new CountDownLatch(1);
    try (Watch.Watcher w = client.getWatchClient().watch(b("/jw/"),
        WatchOption.builder().isPrefix(true).withRevision(start).withPrevKV(true).build(), resp -> {
          events.addAll(resp.getEvents());
          if (events.size() >= 21) {
            done.countDown();
          }
        })) {
      for (int i = 0; i < 19; i++) {
        kv.put(b("/jw/x"), b(String.valueOf(i + 1))).get();
      }
      kv.delete(b("/jw/x")).get();
      assertTrue(done.await(10, TimeUnit.SECONDS), "events: " + events.size());
    }
    for (int i = 0; i < 20; i++) {
      assertEquals(start + i, events.get(i).getKeyValue().getModRevision());
      if (i > 0) {
        assertEquals(String.valueOf(i - 1), events.get(i).getPrevKV().getValue().toString(UTF_8));
      }
    }
    assertEquals(WatchEvent.EventType.DELETE, events.get(20).getEventType());
  }

  /** RequestProgress is answered with watch id −1 (clientv3/jetcd hand it to every watcher on the stream). */
  @Test
  void progressRequestReportsTheRevision() throws Exception {
    long rev = client.getKVClient().put(b("/jp/k"), b("v")).get().getHeader().getRevision();
    var progress = new java.util.concurrent.LinkedBlockingQueue<Long>();
    var watchClient = client.getWatchClient();
    try (Watch.Watcher w = watchClient.watch(b("/jp/"), WatchOption.builder().isPrefix(true).withRevision(rev + 1).build(),
        r -> {
          if (r.isProgressNotify()) {
            progress.add(r.getHeader().getRevision());
          }
        })) {
      long deadline = System.nanoTime() + 10_000_000_000L;
      Long got = null;
      while (got == null && System.nanoTime() < deadline) {
        watchClient.requestProgress();
        got = progress.poll(200, TimeUnit.MILLISECONDS);
      }
      assertNotNull(got, "no progress notification");
      assertTrue(got >= rev, got + " < " + rev);
    }
  }

  @Test
  void leaseGrantKeepAliveTimeToLiveRevoke() throws Exception {
    var lease = client.getLeaseClient();
    long id = lease.grant(30).get().getID();
    client.getKVClient().put(b("/jl/k"), b("v"), PutOption.builder().withLeaseId(id).build()).get();
    assertEquals(30, lease.keepAliveOnce(id).get().getTTL());
    var ttl = lease.timeToLive(id, LeaseOption.builder().withAttachedKeys().build()).get();
    assertEquals(30, ttl.getGrantedTTL());
    assertEquals(List.of(b("/jl/k")), ttl.getKeys());
    lease.revoke(id).get();
    assertEquals(0, client.getKVClient().get(b("/jl/k")).get().getCount());
    assertEquals(-1, lease.timeToLive(id, LeaseOption.DEFAULT).get().getTTL());
  }

  /** Two nodes on one database behave as one etcd: a watch on one sees writes made on the other, in order. */
  @Test
  void twoNodesActAsOneEtcd() throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    try (Node n1 = TestNode.boot(db); Node n2 = TestNode.boot(db);
         EtcdServer e1 = EtcdServer.start(n1.kernel(), "127.0.0.1", 0);
         EtcdServer e2 = EtcdServer.start(n2.kernel(), "127.0.0.1", 0);
         Client c1 = Client.builder().endpoints("http://" + e1.address()).build();
         Client c2 = Client.builder().endpoints("http://" + e2.address()).build()) {
      var seen = new CopyOnWriteArrayList<Long>();
      var done = new CountDownLatch(1);
      int n = 200;
      long from = c2.getKVClient().get(b("/two/")).get().getHeader().getRevision() + 1;
      try (Watch.Watcher w = c2.getWatchClient().watch(b("/two/"), WatchOption.builder().isPrefix(true)
          .withRevision(from).build(), r -> {
        r.getEvents().forEach(e -> seen.add(e.getKeyValue().getModRevision()));
        if (seen.size() >= n) {
          done.countDown();
        }
      })) {
        var futures = new ArrayList<java.util.concurrent.CompletableFuture<?>>();
        for (int i = 0; i < n; i++) {
          // half the writes through each node, concurrently
          futures.add((i % 2 == 0 ? c1 : c2).getKVClient().put(b("/two/" + (i % 7)), b("v" + i)));
        }
        for (var f : futures) {
          f.get();
        }
        assertTrue(done.await(15, TimeUnit.SECONDS), "events seen: " + seen.size() + " " + seen);
      }
      assertEquals(from, seen.getFirst());
      for (int i = 1; i < seen.size(); i++) {
        assertEquals(seen.get(i - 1) + 1, seen.get(i), "gap-free, in order");
      }
      String members = new Etcdctl(e1.address()).run("member", "list").ok().out();
      assertEquals(2, members.lines().count(), members);
    }
  }
}
