package org.dbos.server.etcd;

import static org.junit.jupiter.api.Assertions.*;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import com.google.protobuf.TextFormat;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.dbos.kernel.Node;
import org.dbos.kernel.testing.TestNode;
import org.dbos.server.etcd.api.*;
import org.junit.jupiter.api.Test;

/**
 * The same scripted operations against a real etcd 3.4 (started here on loopback) and against DBOS,
 * compared field by field: every response as text, with revisions made relative to the script's
 * first write and the cluster/member ids and raft term blanked.
 */
class EtcdDifferentialTest {
  private static final ByteString P = bs("/d/");

  static ByteString bs(String s) {
    return ByteString.copyFromUtf8(s);
  }

  /** One server under test: its stubs and the revision its script started at. */
  static final class Target {
    final ManagedChannel channel;
    final KVGrpc.KVBlockingStub kv;
    final LeaseGrpc.LeaseBlockingStub lease;
    final WatchGrpc.WatchStub watch;
    final List<String> transcript = new ArrayList<>();
    long base;

    Target(String endpoint) {
      channel = NettyChannelBuilder.forTarget(endpoint).usePlaintext().build();
      kv = KVGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
      lease = LeaseGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
      watch = WatchGrpc.newStub(channel);
    }

    void record(String step, Supplier<? extends Message> call) {
      try {
        transcript.add(step + " -> " + normalize(call.get()));
      } catch (StatusRuntimeException e) {
        transcript.add(step + " -> " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
      }
    }

    String normalize(Message m) {
      return TextFormat.printer().emittingSingleLine(true).printToString(relative(m));
    }

    Message relative(Message m) {
      var b = m.toBuilder();
      for (var e : m.getAllFields().entrySet()) {
        FieldDescriptor f = e.getKey();
        String n = f.getName();
        if (n.equals("cluster_id") || n.equals("member_id") || n.equals("raft_term")) {
          b.clearField(f);
        } else if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
          if (f.isRepeated()) {
            b.clearField(f);
            for (Object o : (List<?>) e.getValue()) {
              b.addRepeatedField(f, relative((Message) o));
            }
          } else {
            b.setField(f, relative((Message) e.getValue()));
          }
        } else if ((n.equals("revision") || n.endsWith("_revision")) && f.getJavaType() == FieldDescriptor.JavaType.LONG) {
          long v = (Long) e.getValue();
          b.setField(f, v > 0 ? v - base : v);
        }
      }
      return b.build();
    }
  }

  static void script(Target t) throws Exception {
    var first = t.kv.put(PutRequest.newBuilder().setKey(bs("/d/base")).setValue(bs("0")).build());
    t.base = first.getHeader().getRevision();
    t.record("put a", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/a")).setValue(bs("1")).build()));
    t.record("put b", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/b")).setValue(bs("2")).setPrevKv(true).build()));
    t.record("put a prev", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/a")).setValue(bs("3")).setPrevKv(true).build()));
    t.record("put c", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/c")).setValue(bs("zz")).build()));
    t.record("get prefix", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).build()));
    t.record("get sorted mod desc limit 2", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0"))
        .setSortTarget(RangeRequest.SortTarget.MOD).setSortOrder(RangeRequest.SortOrder.DESCEND).setLimit(2).build()));
    t.record("get sorted version, no order", () -> t.kv.range(RangeRequest.newBuilder().setKey(bs("/d/a")).setRangeEnd(bs("/d/c"))
        .setSortTarget(RangeRequest.SortTarget.VERSION).build()));
    t.record("get sorted value desc", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0"))
        .setSortTarget(RangeRequest.SortTarget.VALUE).setSortOrder(RangeRequest.SortOrder.DESCEND).build()));
    t.record("get keys only", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setKeysOnly(true).build()));
    t.record("get count only", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setCountOnly(true).build()));
    t.record("get from key", () -> t.kv.range(RangeRequest.newBuilder().setKey(bs("/d/b")).setRangeEnd(bs("\0")).build()));
    t.record("get all keys", () -> t.kv.range(RangeRequest.newBuilder().setKey(bs("\0")).setRangeEnd(bs("\0")).setCountOnly(true).build()));
    t.record("get empty range", () -> t.kv.range(RangeRequest.newBuilder().setKey(bs("/d/c")).setRangeEnd(bs("/d/a")).build()));
    t.record("get at rev base+1", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setRevision(t.base + 1).build()));
    t.record("get min mod", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setMinModRevision(t.base + 3).build()));
    t.record("get max create", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setMaxCreateRevision(t.base + 1).setLimit(1).build()));
    t.record("get future", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRevision(t.base + 1000).build()));
    t.record("get no key", () -> t.kv.range(RangeRequest.newBuilder().build()));
    t.record("put ignore value absent", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/none")).setIgnoreValue(true).build()));
    t.record("put ignore value with value", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/a")).setValue(bs("x")).setIgnoreValue(true).build()));
    t.record("put unknown lease", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/a")).setValue(bs("x")).setLease(777).build()));
    t.record("txn cas ok", () -> t.kv.txn(TxnRequest.newBuilder()
        .addCompare(Compare.newBuilder().setKey(bs("/d/a")).setTarget(Compare.CompareTarget.VERSION).setResult(Compare.CompareResult.EQUAL).setVersion(2))
        .addCompare(Compare.newBuilder().setKey(bs("/d/none")).setTarget(Compare.CompareTarget.MOD).setResult(Compare.CompareResult.EQUAL).setModRevision(0))
        .addSuccess(RequestOp.newBuilder().setRequestPut(PutRequest.newBuilder().setKey(bs("/d/t")).setValue(bs("t")).setPrevKv(true)))
        .addSuccess(RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(bs("/d/t"))))
        .addSuccess(RequestOp.newBuilder().setRequestTxn(TxnRequest.newBuilder()
            .addCompare(Compare.newBuilder().setKey(bs("/d/t")).setTarget(Compare.CompareTarget.VERSION).setResult(Compare.CompareResult.GREATER).setVersion(0))
            .addSuccess(RequestOp.newBuilder().setRequestPut(PutRequest.newBuilder().setKey(bs("/d/n1")).setValue(bs("n"))))
            .addFailure(RequestOp.newBuilder().setRequestPut(PutRequest.newBuilder().setKey(bs("/d/n2")).setValue(bs("n"))))))
        .addFailure(RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(bs("/d/a"))))
        .build()));
    t.record("txn value on absent is false", () -> t.kv.txn(TxnRequest.newBuilder()
        .addCompare(Compare.newBuilder().setKey(bs("/d/none")).setTarget(Compare.CompareTarget.VALUE).setResult(Compare.CompareResult.NOT_EQUAL).setValue(bs("x")))
        .addFailure(RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setCountOnly(true)))
        .build()));
    t.record("txn range compare", () -> t.kv.txn(TxnRequest.newBuilder()
        .addCompare(Compare.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setTarget(Compare.CompareTarget.CREATE).setResult(Compare.CompareResult.GREATER).setCreateRevision(t.base))
        .addSuccess(RequestOp.newBuilder().setRequestDeleteRange(DeleteRangeRequest.newBuilder().setKey(bs("/d/n1")).setPrevKv(true)))
        .addFailure(RequestOp.newBuilder().setRequestDeleteRange(DeleteRangeRequest.newBuilder().setKey(bs("/d/n1")).setPrevKv(true)))
        .build()));
    t.record("txn duplicate", () -> t.kv.txn(TxnRequest.newBuilder()
        .addSuccess(RequestOp.newBuilder().setRequestPut(PutRequest.newBuilder().setKey(bs("/d/a")).setValue(bs("x"))))
        .addSuccess(RequestOp.newBuilder().setRequestDeleteRange(DeleteRangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0"))))
        .build()));
    var many = TxnRequest.newBuilder();
    for (int i = 0; i < 129; i++) {
      many.addSuccess(RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(bs("/d/a"))));
    }
    t.record("txn too many ops", () -> t.kv.txn(many.build()));
    t.record("txn read only", () -> t.kv.txn(TxnRequest.newBuilder()
        .addSuccess(RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(bs("/d/a")))).build()));
    t.record("delete nothing", () -> t.kv.deleteRange(DeleteRangeRequest.newBuilder().setKey(bs("/d/zzz")).build()));
    t.record("delete range prev", () -> t.kv.deleteRange(DeleteRangeRequest.newBuilder().setKey(bs("/d/b")).setRangeEnd(bs("/d/d")).setPrevKv(true).build()));
    t.record("put b again", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/b")).setValue(bs("again")).setPrevKv(true).build()));

    // bad input: etcd's limits and codes; the server keeps serving afterwards
    t.record("put 1.6 MiB", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/big"))
        .setValue(ByteString.copyFrom(new byte[1_600_000])).build()));
    try {
      t.kv.put(PutRequest.newBuilder().setKey(bs("/d/big")).setValue(ByteString.copyFrom(new byte[3_000_000])).build());
      t.transcript.add("put 3 MB -> accepted");
    } catch (StatusRuntimeException e) {
      t.transcript.add("put 3 MB -> " + e.getStatus().getCode()); // the text is Go's or Java's gRPC, not etcd's
    }
    t.record("lease ttl too large", () -> t.lease.leaseGrant(LeaseGrantRequest.newBuilder().setTTL(9_000_000_001L).build()));
    t.record("lease grant ttl 1", () -> t.lease.leaseGrant(LeaseGrantRequest.newBuilder().setID(5151).setTTL(1).build()));
    t.record("lease revoke 5151", () -> t.lease.leaseRevoke(LeaseRevokeRequest.newBuilder().setID(5151).build()));
    t.record("revoke unknown lease", () -> t.lease.leaseRevoke(LeaseRevokeRequest.newBuilder().setID(999).build()));

    // leases, with explicit ids so both servers agree
    t.record("lease grant", () -> t.lease.leaseGrant(LeaseGrantRequest.newBuilder().setID(4242).setTTL(60).build()));
    t.record("lease grant dup", () -> t.lease.leaseGrant(LeaseGrantRequest.newBuilder().setID(4242).setTTL(60).build()));
    t.record("put with lease", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/l")).setValue(bs("l")).setLease(4242).build()));
    t.record("put ignore lease", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/l")).setValue(bs("l2")).setIgnoreLease(true).build()));
    t.record("txn lease compare", () -> t.kv.txn(TxnRequest.newBuilder()
        .addCompare(Compare.newBuilder().setKey(bs("/d/l")).setTarget(Compare.CompareTarget.LEASE).setResult(Compare.CompareResult.EQUAL).setLease(4242))
        .addSuccess(RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(bs("/d/l")))).build()));
    t.record("ttl keys", () -> {
      var r = t.lease.leaseTimeToLive(LeaseTimeToLiveRequest.newBuilder().setID(4242).setKeys(true).build());
      return r.toBuilder().setTTL(r.getTTL() > 55 ? 60 : r.getTTL()).build();
    });
    t.record("revoke", () -> t.lease.leaseRevoke(LeaseRevokeRequest.newBuilder().setID(4242).build()));
    t.record("get leased key", () -> t.kv.range(RangeRequest.newBuilder().setKey(bs("/d/l")).build()));
    t.record("revoke again", () -> t.lease.leaseRevoke(LeaseRevokeRequest.newBuilder().setID(4242).build()));
    t.record("ttl unknown", () -> t.lease.leaseTimeToLive(LeaseTimeToLiveRequest.newBuilder().setID(4242).build()));

    // watch history from the start of the script, with prev_kv
    long last = t.kv.range(RangeRequest.newBuilder().setKey(bs("/d/a")).build()).getHeader().getRevision();
    for (String w : watch(t, WatchCreateRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setStartRevision(t.base)
        .setPrevKv(true).build(), last)) {
      t.transcript.add("watch " + w);
    }
    for (String w : watch(t, WatchCreateRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setStartRevision(t.base)
        .addFilters(WatchCreateRequest.FilterType.NOPUT).build(), last)) {
      t.transcript.add("watch noput " + w);
    }

    // create, then cancel: both responses as etcd's
    {
      var q = new LinkedBlockingQueue<Object>();
      StreamObserver<WatchRequest> req = stream(t, q);
      req.onNext(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder().setKey(bs("/d/none"))).build());
      var created = (WatchResponse) q.poll(10, TimeUnit.SECONDS);
      assertNotNull(created);
      t.transcript.add("watch create " + t.normalize(created));
      req.onNext(WatchRequest.newBuilder().setCancelRequest(WatchCancelRequest.newBuilder().setWatchId(created.getWatchId())).build());
      var canceled = (WatchResponse) q.poll(10, TimeUnit.SECONDS);
      assertNotNull(canceled);
      t.transcript.add("watch cancel " + t.normalize(canceled));
      req.onCompleted();
    }

    // watch creates etcd refuses (an empty range, a watch id in use), auto ids that skip the ids a client
    // chose, and a cancel of an unknown id, which etcd does not answer: all on one stream
    {
      var q = new LinkedBlockingQueue<Object>();
      StreamObserver<WatchRequest> req = stream(t, q);
      var creates = new java.util.LinkedHashMap<String, WatchCreateRequest.Builder>();
      creates.put("key > range end", WatchCreateRequest.newBuilder().setKey(bs("/d/c")).setRangeEnd(bs("/d/a")));
      creates.put("key = range end", WatchCreateRequest.newBuilder().setKey(bs("/d/a")).setRangeEnd(bs("/d/a")));
      creates.put("id 1", WatchCreateRequest.newBuilder().setKey(bs("/d/a")).setWatchId(1));
      creates.put("auto id", WatchCreateRequest.newBuilder().setKey(bs("/d/a")));
      creates.put("auto id after 1", WatchCreateRequest.newBuilder().setKey(bs("/d/a")));
      creates.put("duplicate id 1", WatchCreateRequest.newBuilder().setKey(bs("/d/b")).setWatchId(1));
      creates.put("empty key, all keys", WatchCreateRequest.newBuilder().setRangeEnd(bs("\0")));
      for (var c : creates.entrySet()) {
        req.onNext(WatchRequest.newBuilder().setCreateRequest(c.getValue()).build());
        Object r = q.poll(10, TimeUnit.SECONDS);
        t.transcript.add("watch create " + c.getKey() + " " + (r instanceof WatchResponse w ? t.normalize(w) : r));
      }
      req.onNext(WatchRequest.newBuilder().setCancelRequest(WatchCancelRequest.newBuilder().setWatchId(99)).build());
      req.onNext(WatchRequest.newBuilder().setCancelRequest(WatchCancelRequest.newBuilder().setWatchId(1)).build());
      Object r = q.poll(10, TimeUnit.SECONDS);
      t.transcript.add("watch cancel 99, then 1 " + (r instanceof WatchResponse w ? t.normalize(w) : r));
      req.onCompleted();
    }
    // etcd refuses every write (a raft proposal) above --max-request-bytes; reads are not proposals
    ByteString bigKey = ByteString.copyFrom(new byte[1_600_000]).concat(bs("k"));
    t.record("delete 1.6 MiB key", () -> t.kv.deleteRange(DeleteRangeRequest.newBuilder().setKey(bigKey).build()));
    t.record("get 1.6 MiB key", () -> t.kv.range(RangeRequest.newBuilder().setKey(bigKey).build()));

    // compaction
    t.record("compact", () -> t.kv.compact(CompactionRequest.newBuilder().setRevision(t.base + 5).setPhysical(true).build()));
    t.record("compact again", () -> t.kv.compact(CompactionRequest.newBuilder().setRevision(t.base + 3).build()));
    t.record("compact future", () -> t.kv.compact(CompactionRequest.newBuilder().setRevision(t.base + 1000).build()));
    t.record("get compacted", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setRevision(t.base + 4).build()));
    t.record("get at compacted", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setRevision(t.base + 5).build()));
    for (String w : watch(t, WatchCreateRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setStartRevision(t.base + 1).build(), -1)) {
      t.transcript.add("watch compacted " + w);
    }

    // a Txn whose Range names a compacted or future revision fails before its Put writes (etcd checks
    // every Range on the path against the state before the Txn, so the Txn's own revision is future)
    long now = t.kv.range(RangeRequest.newBuilder().setKey(bs("/d/a")).build()).getHeader().getRevision();
    for (long rev : new long[] {t.base + 4, now + 1}) {
      t.record("txn put, range at " + (rev - t.base), () -> t.kv.txn(TxnRequest.newBuilder()
          .addSuccess(RequestOp.newBuilder().setRequestPut(PutRequest.newBuilder().setKey(bs("/d/x")).setValue(bs("x"))))
          .addSuccess(RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).setRevision(rev)))
          .build()));
    }
    t.record("get after failed txns", () -> t.kv.range(RangeRequest.newBuilder().setKey(P).setRangeEnd(bs("/d0")).build()));
    t.record("put ignore value", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/a")).setIgnoreValue(true).setPrevKv(true).build()));
    t.record("get after ignore value", () -> t.kv.range(RangeRequest.newBuilder().setKey(bs("/d/a")).build()));
    t.record("txn compare less", () -> t.kv.txn(TxnRequest.newBuilder()
        .addCompare(Compare.newBuilder().setKey(bs("/d/a")).setTarget(Compare.CompareTarget.VERSION).setResult(Compare.CompareResult.LESS).setVersion(100))
        .addCompare(Compare.newBuilder().setKey(bs("/d/a")).setTarget(Compare.CompareTarget.VALUE).setResult(Compare.CompareResult.LESS).setValue(bs("4")))
        .addSuccess(RequestOp.newBuilder().setRequestPut(PutRequest.newBuilder().setKey(bs("/d/less")).setValue(bs("y"))))
        .build()));
    t.record("txn compare less false", () -> t.kv.txn(TxnRequest.newBuilder()
        .addCompare(Compare.newBuilder().setKey(bs("/d/a")).setTarget(Compare.CompareTarget.MOD).setResult(Compare.CompareResult.LESS).setModRevision(t.base))
        .addSuccess(RequestOp.newBuilder().setRequestPut(PutRequest.newBuilder().setKey(bs("/d/less")).setValue(bs("n"))))
        .addFailure(RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(bs("/d/less"))))
        .build()));

    // lease expiry (TTL 1 is raised to etcd's minimum of 2 s): both keys go at one revision, as a watch
    // on [/d/e, /d/f) sees it
    t.record("lease grant to expire", () -> t.lease.leaseGrant(LeaseGrantRequest.newBuilder().setID(6161).setTTL(1).build()));
    long leased = t.kv.put(PutRequest.newBuilder().setKey(bs("/d/e1")).setValue(bs("e")).setLease(6161).build())
        .getHeader().getRevision();
    t.record("put e2 with lease", () -> t.kv.put(PutRequest.newBuilder().setKey(bs("/d/e2")).setValue(bs("e")).setLease(6161).build()));
    for (String w : watch(t, WatchCreateRequest.newBuilder().setKey(bs("/d/e")).setRangeEnd(bs("/d/f")).setStartRevision(leased)
        .setPrevKv(true).build(), leased + 2)) {
      t.transcript.add("watch expiry " + w);
    }
    t.record("ttl expired", () -> t.lease.leaseTimeToLive(LeaseTimeToLiveRequest.newBuilder().setID(6161).build()));
    t.record("get expired keys", () -> t.kv.range(RangeRequest.newBuilder().setKey(bs("/d/e")).setRangeEnd(bs("/d/f")).build()));
  }

  /** A watch stream on {@code t} whose responses and error go to {@code q}. */
  static StreamObserver<WatchRequest> stream(Target t, LinkedBlockingQueue<Object> q) {
    return t.watch.watch(new StreamObserver<>() {
      public void onNext(WatchResponse r) {
        q.add(r);
      }

      public void onError(Throwable e) {
        q.add(e);
      }

      public void onCompleted() {}
    });
  }

  /** Watches until an event at {@code until} (or a cancel) arrives; returns the normalized responses. */
  static List<String> watch(Target t, WatchCreateRequest create, long until) throws Exception {
    var q = new LinkedBlockingQueue<Object>();
    StreamObserver<WatchRequest> req = stream(t, q);
    req.onNext(WatchRequest.newBuilder().setCreateRequest(create).build());
    var out = new ArrayList<String>();
    try {
      while (true) {
        Object o = q.poll(10, TimeUnit.SECONDS);
        assertNotNull(o, "watch response timed out after " + out);
        if (o instanceof Throwable e) {
          out.add("error " + e);
          return out;
        }
        var r = (WatchResponse) o;
        out.add(t.normalize(r));
        if (r.getCanceled() || (!r.getEventsList().isEmpty() && r.getEventsList().getLast().getKv().getModRevision() >= until)) {
          return out;
        }
      }
    } finally {
      req.onCompleted();
    }
  }

  @Test
  void dbosAnswersLikeEtcd() throws Exception {
    List<String> expected;
    try (RealEtcd real = RealEtcd.start()) {
      var t = new Target(real.endpoint());
      try {
        script(t);
      } finally {
        t.channel.shutdownNow();
      }
      expected = t.transcript;
    }
    List<String> actual;
    try (Node node = TestNode.boot(); EtcdServer etcd = EtcdServer.start(node.kernel(), "127.0.0.1", 0)) {
      var t = new Target(etcd.address());
      try {
        script(t);
      } finally {
        t.channel.shutdownNow();
      }
      actual = t.transcript;
    }
    var diffs = new ArrayList<String>();
    for (int i = 0; i < Math.max(expected.size(), actual.size()); i++) {
      String e = i < expected.size() ? expected.get(i) : "<none>";
      String a = i < actual.size() ? actual.get(i) : "<none>";
      if (!e.equals(a)) {
        diffs.add("etcd: " + e + "\ndbos: " + a);
      }
    }
    assertTrue(diffs.isEmpty(), diffs.size() + " differences:\n" + String.join("\n\n", diffs));
  }
}
