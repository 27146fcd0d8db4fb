package org.dbos.server.etcd;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.*;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.dbos.kernel.Node;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * etcd's v3lock and v3election services through jetcd's Lock and Election clients, the same script
 * against DBOS and against a real etcd 3.4 (which the test starts): both must pass it.
 */
class LockAndElectionTest {
  static Node node;
  static EtcdServer dbos;
  static RealEtcd etcd;

  @BeforeAll
  static void start() {
    node = TestNode.boot();
    dbos = EtcdServer.start(node.kernel(), "127.0.0.1", 0);
    etcd = RealEtcd.start();
  }

  @AfterAll
  static void stop() {
    etcd.close();
    dbos.close();
    node.close();
  }

  /** A fresh client per test: jetcd's shared executors do not outlive its election streams. */
  static Stream<Arguments> servers() {
    return Stream.of(Arguments.of("dbos", "http://" + dbos.address()), Arguments.of("etcd 3.4", "http://" + etcd.endpoint()));
  }

  static ByteSequence b(String s) {
    return ByteSequence.from(s, UTF_8);
  }

  /** jetcd's Lock client: the second locker waits until the first unlocks; a revoked lease releases. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("servers")
  void locksAreExclusiveAndPassOn(String server, String endpoint) throws Exception {
    try (Client client = Client.builder().endpoints(endpoint).build()) {
      var leases = client.getLeaseClient();
      long l1 = leases.grant(30).get().getID();
      long l2 = leases.grant(30).get().getID();
      long l3 = leases.grant(30).get().getID();
      var locks = client.getLockClient();
      ByteSequence k1 = locks.lock(b("/jl"), l1).get(5, TimeUnit.SECONDS).getKey();
      assertEquals("/jl/" + Long.toHexString(l1), k1.toString(UTF_8));
      var second = locks.lock(b("/jl"), l2);
      Thread.sleep(300);
      assertFalse(second.isDone(), "the lock is held");
      locks.unlock(k1).get(5, TimeUnit.SECONDS);
      ByteSequence k2 = second.get(5, TimeUnit.SECONDS).getKey();
      var third = locks.lock(b("/jl"), l3);
      Thread.sleep(300);
      assertFalse(third.isDone(), "the lock passed to the second locker");
      leases.revoke(l2).get(5, TimeUnit.SECONDS);
      assertEquals("/jl/" + Long.toHexString(l3), third.get(5, TimeUnit.SECONDS).getKey().toString(UTF_8),
          "revoking the holder's lease released its lock");
      assertEquals(0, client.getKVClient().get(k2).get().getCount());
      locks.unlock(b("/jl/" + Long.toHexString(l3))).get(5, TimeUnit.SECONDS);
    }
  }

  /** jetcd's Election client: campaign, leader, proclaim, observe, resign, and etcd's errors. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("servers")
  void electionsCampaignObserveAndResign(String server, String endpoint) throws Exception {
    try (Client client = Client.builder().endpoints(endpoint).build()) {
      var leases = client.getLeaseClient();
      long l1 = leases.grant(30).get().getID();
      long l2 = leases.grant(30).get().getID();
      var election = client.getElectionClient();
      var none = assertThrows(java.util.concurrent.ExecutionException.class, () -> election.leader(b("/je")).get());
      assertInstanceOf(io.etcd.jetcd.election.NoLeaderException.class, none.getCause());

      var alice = election.campaign(b("/je"), l1, b("alice")).get(5, TimeUnit.SECONDS).getLeader();
      var observed = new java.util.concurrent.LinkedBlockingQueue<String>();
      election.observe(b("/je"), new io.etcd.jetcd.Election.Listener() {
        @Override
        public void onNext(io.etcd.jetcd.election.LeaderResponse r) {
          observed.add(r.getKv().getValue().toString(UTF_8));
        }

        @Override
        public void onError(Throwable t) {
          observed.add("error " + t);
        }

        @Override
        public void onCompleted() {}
      });
      assertEquals("alice", observed.poll(5, TimeUnit.SECONDS));
      var bob = election.campaign(b("/je"), l2, b("bob"));
      Thread.sleep(300);
      assertFalse(bob.isDone(), "alice leads");
      election.proclaim(alice, b("alice, again")).get(5, TimeUnit.SECONDS);
      assertEquals("alice, again", observed.poll(5, TimeUnit.SECONDS));
      assertEquals("alice, again", election.leader(b("/je")).get().getKv().getValue().toString(UTF_8));
      election.resign(alice).get(5, TimeUnit.SECONDS);
      var bobKey = bob.get(5, TimeUnit.SECONDS).getLeader();
      assertEquals("bob", observed.poll(5, TimeUnit.SECONDS));
      var stale = assertThrows(java.util.concurrent.ExecutionException.class, () -> election.proclaim(alice, b("mine")).get());
      assertInstanceOf(io.etcd.jetcd.election.NotLeaderException.class, stale.getCause());
      election.resign(bobKey).get(5, TimeUnit.SECONDS);
    }
  }
}
