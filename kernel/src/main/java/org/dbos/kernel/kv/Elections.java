package org.dbos.kernel.kv;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.Consumer;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.kv.Kv.*;

/**
 * etcd's locks and elections (the clientv3 concurrency recipes that etcd's v3lock and v3election
 * services run server-side), over this store. A contender for name N owns the key {@code N/<lease id
 * in hex>}, attached to its lease; it holds the lock, or leads, once every key under {@code N/}
 * created before its own is gone. So a contender's lease expiring, or its key's deletion, hands the
 * lock to the next in creation order. Every step is a Txn, Range or watch of the store: an audited
 * system call checked against the caller's rights on the keys.
 *
 * <p>Waiting blocks the calling thread (run it on a virtual thread) until done, PERMISSION_DENIED, or
 * until {@code cancelled} completes: then it throws a {@link CancellationException}, and a cancelled
 * campaign deletes the key it created, as etcd's does. (Not by interruption: an interrupt during a
 * database call would close the connection under it.)
 */
public final class Elections {
  /** etcd's texts for the election errors its clients match on. */
  public static final String ERR_NOT_LEADER = "election: not leader";
  public static final String ERR_NO_LEADER = "election: no leader";

  /** A contender's hold: the election (or lock) name, its key, the key's create revision, its lease. */
  public record Leader(byte[] name, byte[] key, long revision, long lease) {}

  private final KvStore store;

  public Elections(KvStore store) {
    this.store = store;
  }

  /**
   * Campaign: creates the caller's key {@code name/<lease hex>} with {@code value} (or, if the lease
   * already contends, keeps its key and sets the value), then waits until it leads. Lock is a campaign
   * with an empty value. NOT_FOUND {@link Kv#ERR_LEASE_NOT_FOUND} for an unknown lease.
   */
  public Leader campaign(Session s, byte[] name, long lease, byte[] value, CompletableFuture<Void> cancelled) {
    KvStore.requireKey(name);
    byte[] prefix = prefix(name);
    byte[] key = concat(prefix, Long.toHexString(lease).getBytes(StandardCharsets.US_ASCII));
    var created = new Compare(key, null, Compare.Target.CREATE, Compare.Result.EQUAL, 0, null);
    TxnResponse t = store.txn(s, new TxnRequest(List.of(created),
        List.of(new PutRequest(key, value, lease, false, false, false)), List.of(RangeRequest.of(key, null))));
    long revision;
    if (t.succeeded()) {
      revision = t.revision();
    } else {
      KeyValue mine = ((RangeResponse) t.responses().getFirst()).kvs().getFirst();
      revision = mine.createRevision();
      if (!Arrays.equals(mine.value(), value)) {
        proclaim(s, new Leader(name, key, revision, lease), value);
      }
    }
    try {
      waitForDeletes(s, prefix, revision - 1, cancelled);
    } catch (RuntimeException e) {
      if (t.succeeded()) {
        store.delete(s, new DeleteRequest(key, null, false));
      }
      throw e;
    }
    return new Leader(name, key, revision, lease);
  }

  /** Sets the leader's value if it still leads (its key has the same create revision); else FAILED_PRECONDITION {@link #ERR_NOT_LEADER}. */
  public long proclaim(Session s, Leader l, byte[] value) {
    TxnResponse t = store.txn(s, new TxnRequest(List.of(holds(l)),
        List.of(new PutRequest(l.key(), value, l.lease(), false, false, false)), List.of()));
    if (!t.succeeded()) {
      throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION, ERR_NOT_LEADER);
    }
    return t.revision();
  }

  /** Resign: deletes the leader's key if it still holds it; the next contender leads. */
  public long resign(Session s, Leader l) {
    return store.txn(s, new TxnRequest(List.of(holds(l)), List.of(new DeleteRequest(l.key(), null, false)), List.of()))
        .revision();
  }

  /** Unlock: deletes a lock's key (whoever holds it, as etcd's Unlock does); the store's revision after. */
  public long unlock(Session s, byte[] key) {
    return store.delete(s, new DeleteRequest(key, null, false)).revision();
  }

  /** The current leader's key-value: the oldest key under {@code name/}; NOT_FOUND {@link #ERR_NO_LEADER} if none. */
  public RangeResponse leader(Session s, byte[] name) {
    KvStore.requireKey(name);
    RangeResponse r = oldest(s, prefix(name));
    if (r.kvs().isEmpty()) {
      throw SyscallException.notFound(ERR_NO_LEADER);
    }
    return r;
  }

  /**
   * Observe: calls {@code sink} with the leader's key-value now (once there is one) and again whenever
   * the leader proclaims a new value or leadership passes, until cancelled.
   */
  public void observe(Session s, byte[] name, Consumer<KeyValue> sink, CompletableFuture<Void> cancelled) {
    KvStore.requireKey(name);
    byte[] prefix = prefix(name);
    while (true) {
      RangeResponse r = oldest(s, prefix);
      if (r.kvs().isEmpty()) {
        try (var events = new Events(s, prefix, KeyRanges.prefixEnd(prefix), r.revision() + 1, cancelled)) {
          events.take(); // a contender arrived (or the watch restarts): look again
        }
        continue;
      }
      KeyValue leader = r.kvs().getFirst();
      sink.accept(leader);
      try (var events = new Events(s, leader.key(), null, leader.modRevision() + 1, cancelled)) {
        while (true) {
          Event e = events.take();
          if (e.type() == Event.Type.DELETE) {
            break;
          }
          if (!Arrays.equals(e.kv().value(), leader.value())) {
            leader = e.kv();
            sink.accept(leader);
          }
        }
      }
    }
  }

  /** The key under {@code prefix} created first (the leader), if any. */
  private RangeResponse oldest(Session s, byte[] prefix) {
    return store.range(s, new RangeRequest(prefix, KeyRanges.prefixEnd(prefix), 1, 0, SortOrder.ASCEND,
        SortTarget.CREATE, false, false, 0, 0, 0, 0));
  }

  /** Waits until no key under {@code prefix} has a create revision at or below {@code maxCreate}. */
  private void waitForDeletes(Session s, byte[] prefix, long maxCreate, CompletableFuture<Void> cancelled) {
    while (true) {
      RangeResponse r = store.range(s, new RangeRequest(prefix, KeyRanges.prefixEnd(prefix), 1, 0, SortOrder.DESCEND,
          SortTarget.CREATE, true, false, 0, 0, 0, maxCreate));
      if (r.kvs().isEmpty()) {
        return;
      }
      try (var events = new Events(s, r.kvs().getFirst().key(), null, r.revision() + 1, cancelled)) {
        while (events.take().type() != Event.Type.DELETE) {
          // a put to the key ahead of us: it still waits
        }
      }
    }
  }

  private static Compare holds(Leader l) {
    return new Compare(l.key(), null, Compare.Target.CREATE, Compare.Result.EQUAL, l.revision(), null);
  }

  private static byte[] prefix(byte[] name) {
    return concat(name, new byte[] {'/'});
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] c = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }

  /** A watch as a blocking queue of events; a compacted start re-reads as if the key had changed. */
  private final class Events implements Watches.Sink, AutoCloseable {
    private static final Event RESTART = new Event(Event.Type.DELETE, null, null);
    private final LinkedBlockingQueue<Event> queue = new LinkedBlockingQueue<>();
    private final CompletableFuture<Void> cancelled;
    private final Watches.Watcher watcher;
    private volatile boolean denied;

    Events(Session s, byte[] key, byte[] end, long from, CompletableFuture<Void> cancelled) {
      this.cancelled = cancelled;
      watcher = store.watches().watch(s, key, end, from, false, false, false, false, this);
      cancelled.thenRun(() -> queue.add(RESTART));
    }

    /** The next event; a watch cut short by compaction reads as a DELETE, so the caller looks again. */
    Event take() {
      Event e;
      try {
        e = queue.take();
      } catch (InterruptedException ex) {
        Thread.currentThread().interrupt();
        throw new CancellationException("interrupted");
      }
      if (cancelled.isDone()) {
        throw new CancellationException("the client cancelled");
      }
      if (denied) {
        throw SyscallException.denied("the watch lost its session or READ right");
      }
      return e;
    }

    @Override
    public void events(List<Event> events, long revision) {
      queue.addAll(events);
    }

    @Override
    public void compacted(long compactRevision) {
      queue.add(RESTART);
    }

    @Override
    public void denied() {
      denied = true;
      queue.add(RESTART);
    }

    @Override
    public void close() {
      store.watches().cancel(watcher);
    }
  }
}
