package org.dbos.kernel.kv;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.Ids;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.Tx;
import org.dbos.kernel.db.Database;
import org.dbos.kernel.kv.Kv.*;
import org.dbos.kernel.security.AuditLog;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The etcd v3 data model as a system service: an MVCC key-value store whose state is tables
 * {@code kv} (live keys), {@code kv_history} (every revision of every key until compaction),
 * {@code kv_revision} (the clock) and {@code kv_leases}.
 *
 * <p>Writes (Put, DeleteRange, Txn, Compact, lease revocation) go through one writer per node that
 * drains its queue into one database transaction per batch: the batch locks the clock row once, gives
 * each request that changes something the next revision, checks and audits each request on its own
 * (a denied or failed request fails alone), and commits once. Revisions are therefore gap-free and
 * become visible in order, on every node sharing the database. Reads run as ordinary system calls.
 *
 * <p>Rights: READ or WRITE on the key's or range's object ({@link KeyRanges#object}: {@code "kv:" + key},
 * or {@code "kv:" + prefix + "\\*"} for a range); leases are {@code "lease:" + id}; Compact needs
 * ADMIN on {@code "kv:"}.
 */
public final class KvStore implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(KvStore.class);
  /**
   * The NOTIFY channel a committed write batch signals, while a watch hub elsewhere has watchers, with
   * its last revision as payload.
   */
  public static final String CHANNEL = "dbos_kv";
  public static final int MAX_TXN_OPS = 128;
  /**
   * The longest key a Put may write. A key is a btree entry of {@code kv_pkey} and, with its revision,
   * of {@code kv_history_pkey}, and PostgreSQL refuses btree entries over 2,704 bytes (a third of an
   * 8 KB page): an incompressible key fits up to 2,684 bytes. etcd takes keys up to its request limit;
   * longer keys would need those indexes on a digest of the key, and range scans on a prefix of it.
   */
  public static final int MAX_KEY_BYTES = 2560;
  /** etcd's minimum lease TTL with default election settings; shorter grants are raised to it. */
  public static final long MIN_LEASE_TTL = 2;
  public static final long MAX_LEASE_TTL = 9_000_000_000L;
  private static final int MAX_BATCH = 512;
  /** SQLSTATE of kv_clock_moved() (V32). */
  private static final String CLOCK_MOVED = "DBOSK";

  private static final String LOCK_CLOCK = "SELECT revision, compacted FROM kv_revision FOR UPDATE";
  private static final String PUT = """
      WITH prev AS (SELECT create_revision, mod_revision, version, lease, value FROM kv WHERE key = ?),
      up AS (INSERT INTO kv AS k (key, create_revision, mod_revision, version, lease, value) VALUES (?, ?, ?, 1, ?, ?)
             ON CONFLICT (key) DO UPDATE SET mod_revision = EXCLUDED.mod_revision, version = k.version + 1,
               lease = CASE WHEN ? THEN k.lease ELSE EXCLUDED.lease END,
               value = CASE WHEN ? THEN k.value ELSE EXCLUDED.value END
             RETURNING key, create_revision, mod_revision, version, lease, value),
      h AS (INSERT INTO kv_history (key, mod_revision, seq, create_revision, version, lease, value)
            SELECT key, mod_revision, ?, create_revision, version, lease, value FROM up)
      SELECT create_revision, mod_revision, version, lease, value FROM prev""";
  private static final String DELETE = """
      WITH d AS (DELETE FROM kv WHERE %s RETURNING key, create_revision, mod_revision, version, lease, value),
      h AS (INSERT INTO kv_history (key, mod_revision, seq, create_revision, version, lease, value)
            SELECT key, ?, ? + (row_number() OVER (ORDER BY key))::int - 1, 0, 0, 0, '\\x'::bytea FROM d)
      SELECT key, create_revision, mod_revision, version, lease, CASE WHEN ? THEN value END FROM d ORDER BY key""";
  private static final String LEASE_EXISTS = "SELECT 1 FROM kv_leases WHERE id = ? FOR KEY SHARE";
  private static final String KEY_EXISTS = "SELECT 1 FROM kv WHERE key = ?";
  private static final String COMPACT = """
      DELETE FROM kv_history h WHERE h.mod_revision <= ? AND (h.version = 0 OR EXISTS (
        SELECT 1 FROM kv_history n WHERE n.key = h.key AND n.mod_revision > h.mod_revision AND n.mod_revision <= ?))""";
  private static final String REVOKE = "DELETE FROM kv_leases WHERE id = ? RETURNING id";
  private static final String REVOKE_EXPIRED = "DELETE FROM kv_leases WHERE id = ? AND expires_at <= now() RETURNING id";
  private static final String GRANT = """
      INSERT INTO kv_leases (id, granted_ttl, expires_at) VALUES (?, ?, now() + ? * interval '1 second')
      ON CONFLICT (id) DO NOTHING""";
  /** A lease past its expiry is dead even before a sweep revokes it: renewing it would save its keys. */
  private static final String KEEP_ALIVE = """
      UPDATE kv_leases SET expires_at = now() + granted_ttl * interval '1 second'
      WHERE id = ? AND expires_at > now() RETURNING granted_ttl""";
  private static final String TIME_TO_LIVE = """
      SELECT granted_ttl, floor(extract(epoch FROM expires_at - now()))::bigint FROM kv_leases
      WHERE id = ? AND expires_at > now()""";
  private static final String LEASE_KEYS = "SELECT key FROM kv WHERE lease = ? ORDER BY key";
  private static final String LEASES = "SELECT id FROM kv_leases ORDER BY id";
  private static final String EXPIRED = """
      SELECT id FROM kv_leases WHERE expires_at <= now() ORDER BY expires_at LIMIT 100""";
  private static final String CLOCK = "SELECT revision, compacted FROM kv_revision";
  private static final String SIZE = """
      SELECT (SELECT revision FROM kv_revision), (SELECT compacted FROM kv_revision),
        pg_total_relation_size('kv') + pg_total_relation_size('kv_history') + pg_total_relation_size('kv_leases'),
        (SELECT count(*) FROM kv)""";

  /**
   * The sum, modulo 2^32, of the first 32 bits of an MD5 of each history row up to a revision: a hash
   * of the keyspace's revisions that no row order changes, computed where the rows are.
   */
  private static final String HASH = """
      SELECT (SELECT revision FROM kv_revision), (SELECT compacted FROM kv_revision),
        (SELECT coalesce(sum(('x' || substr(md5(key || int8send(mod_revision) || int8send(create_revision)
                 || int8send(version) || int8send(lease) || value), 1, 8))::bit(32)::bigint), 0) % 4294967296
         FROM kv_history WHERE mod_revision <= ?)""";

  private static final String SNAPSHOT_LEASES = """
      SELECT id, granted_ttl, greatest(0, ceil(extract(epoch FROM expires_at - now())))::bigint FROM kv_leases ORDER BY id""";
  private static final String SNAPSHOT_ROWS = """
      SELECT key, create_revision, mod_revision, version, lease, value, seq FROM kv_history ORDER BY mod_revision, seq""";

  /** A revocation the writer runs: on behalf of a client, or of expiry (then only if still expired). */
  private record Revoke(long id, boolean expiredOnly) {}

  private record Compact(long revision) {}

  private record Pending(Session session, String call, String object, Right right, Object request,
                         java.util.UUID auditId, CompletableFuture<Object> result) {}

  /** The clock row as the running batch sees it. */
  static final class Clock {
    long revision;
    long compacted;
  }

  private final Kernel kernel;
  private final Database db;
  private final LinkedBlockingQueue<Pending> queue = new LinkedBlockingQueue<>();
  private final Thread writer;
  private final ScheduledExecutorService sweeper;
  private final Watches watches;
  private final io.micrometer.core.instrument.DistributionSummary batchSize;
  private final io.micrometer.core.instrument.Timer batchTime;
  private volatile boolean closed;
  /** The clock as this writer last left or read it; −1 when unknown (then the next batch reads it under its lock). */
  private long knownRevision = -1;
  /** Batches left to run under the lock after another node moved the clock under {@link #writePuts}. */
  private int slowBatches;
  /** How runs of Puts read the rows they replace: by the upsert's {@code RETURNING old} from PostgreSQL 18 on. */
  private final PutSql putSql;

  private KvStore(Kernel kernel, java.time.Duration sweepEvery) {
    this(kernel, sweepEvery, null);
  }

  /** {@code returningOld}: null to choose by the database's version; false tests the statements before 18. */
  KvStore(Kernel kernel, java.time.Duration sweepEvery, Boolean returningOld) {
    this.kernel = kernel;
    this.db = kernel.database();
    this.putSql = (returningOld != null ? returningOld
        : db.transaction(c -> c.getMetaData().getDatabaseMajorVersion() >= 18)) ? RETURNING_OLD : PROBED;
    this.watches = new Watches(this, db);
    this.batchSize = io.micrometer.core.instrument.DistributionSummary.builder("dbos.kv.batch.size")
        .description("Requests per key-value write transaction").register(kernel.meters());
    this.batchTime = io.micrometer.core.instrument.Timer.builder("dbos.kv.batch.time")
        .description("Time of one key-value write transaction, commit included").register(kernel.meters());
    this.writer = Thread.ofPlatform().name("dbos-kv-writer").daemon().start(this::writeLoop);
    this.sweeper = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().name("dbos-lease-sweeper")
        .daemon().unstarted(r));
    if (sweepEvery != null) {
      long ms = sweepEvery.toMillis();
      sweeper.scheduleWithFixedDelay(this::sweepExpired, ms, ms, TimeUnit.MILLISECONDS);
    }
  }

  /** Starts the store's writer, lease sweeper and watch hub on a node's kernel; closed with the kernel. */
  public static KvStore start(Kernel kernel) {
    var s = new KvStore(kernel, java.time.Duration.ofMillis(250));
    kernel.onClose(s);
    return s;
  }

  /** The store for a client kernel (the CLI): the same calls, but it leaves lease expiry to the nodes. */
  public static KvStore client(Kernel kernel) {
    return new KvStore(kernel, null);
  }

  public Kernel kernel() {
    return kernel;
  }

  public Watches watches() {
    return watches;
  }

  // ---- KV -----------------------------------------------------------------------------------

  /**
   * Range returns the keys in [key, rangeEnd) at {@code revision} (current if ≤ 0), with {@code count}
   * the number of keys in the range (ignoring limit and the revision filters) and {@code more} true
   * when the limit cut entries off. Sorting: by target in the given order; order NONE with a target
   * other than KEY means ASCEND; ties are broken by key. Fails with INVALID_ARGUMENT {@link
   * Kv#ERR_COMPACTED} (read below the compacted revision) or {@link Kv#ERR_FUTURE_REV} (beyond the
   * current one) — the front end maps both to OUT_OF_RANGE — and {@link Kv#ERR_EMPTY_KEY}.
   */
  public RangeResponse range(Session s, RangeRequest r) {
    requireKey(r.key());
    String object = KeyRanges.object(r.key(), r.rangeEnd());
    if (Reads.oneKeyNow(r)) {
      return kernel.call(s, "kv.range", Right.READ, object, tx -> {
        tx.lastAudited(Reads.ONE_KEY, rs -> Reads.oneKey(rs, r), null, r.key()); // one round trip
        return null;
      });
    }
    if (r.revision() <= 0) { // cannot fail once read: the statement travels with the audit row and COMMIT
      Reads.Statement st = Reads.statement(r, -1);
      return kernel.call(s, "kv.range", Right.READ, object, tx -> {
        tx.lastResult(st.sql(), rs -> Reads.read(rs, r, -1, -1), st.args());
        return null;
      });
    }
    return kernel.call(s, "kv.range", Right.READ, object, tx -> Reads.range(tx.connection(), r, -1, -1));
  }

  /**
   * Put sets the value of a key at a new revision: create_revision is that revision if the key was
   * absent, version grows by one, lease replaces the old one (0 detaches). ignore_value/ignore_lease keep
   * the current value/lease and fail with {@link Kv#ERR_KEY_NOT_FOUND} if the key is absent; a lease that
   * does not exist fails with {@link Kv#ERR_LEASE_NOT_FOUND} (NOT_FOUND).
   */
  public PutResponse put(Session s, PutRequest r) {
    return (PutResponse) submit(s, "kv.put", Right.WRITE, KeyRanges.keyObject(r.key()), r);
  }

  /**
   * DeleteRange deletes the keys in [key, rangeEnd), leaving tombstones at one new revision; deleting
   * nothing does not advance the revision.
   */
  public DeleteResponse delete(Session s, DeleteRequest r) {
    return (DeleteResponse) submit(s, "kv.delete", Right.WRITE, KeyRanges.object(r.key(), r.rangeEnd()), r);
  }

  /**
   * Txn evaluates every compare against the state before the Txn (an empty key range compares as a
   * key with all fields 0; a VALUE compare on no key is false), then applies the success or failure
   * ops in order, later ops seeing earlier writes; nested Txns decide their branch against the state
   * before the outer Txn too, as in etcd. All writes share one new revision; a Txn that writes nothing
   * keeps the revision. Fails with {@link Kv#ERR_TOO_MANY_OPS} (more than 128 compares or ops in a
   * list), {@link Kv#ERR_DUPLICATE_KEY} (one key written twice on a path), or {@link Kv#ERR_COMPACTED} /
   * {@link Kv#ERR_FUTURE_REV} (a Range on the path at a revision compacted or beyond the one before
   * the Txn, as etcd checks), before doing anything: a failed Txn writes nothing.
   */
  public TxnResponse txn(Session s, TxnRequest r) {
    return (TxnResponse) submit(s, "kv.txn", Right.WRITE, Txns.object(r), r);
  }

  /**
   * Compact drops every version older than {@code revision} except each key's latest one at or below
   * it (tombstones at or below it go too), physically, before answering. Reads below {@code revision}
   * then fail with {@link Kv#ERR_COMPACTED}. Compacting at or below the compacted revision fails with
   * {@link Kv#ERR_COMPACTED}, beyond the current revision with {@link Kv#ERR_FUTURE_REV}.
   */
  public CompactResponse compact(Session s, long revision) {
    return (CompactResponse) submit(s, "kv.compact", Right.ADMIN, "kv:", new Compact(revision));
  }

  /**
   * Put, DeleteRange and Txn without blocking the caller: the future completes (on the writer's
   * thread, right after the batch commits) with the response or the call's SyscallException.
   */
  public java.util.concurrent.CompletableFuture<PutResponse> putAsync(Session s, PutRequest r) {
    return enqueue(s, "kv.put", Right.WRITE, KeyRanges.keyObject(r.key()), r).thenApply(PutResponse.class::cast);
  }

  public java.util.concurrent.CompletableFuture<DeleteResponse> deleteAsync(Session s, DeleteRequest r) {
    return enqueue(s, "kv.delete", Right.WRITE, KeyRanges.object(r.key(), r.rangeEnd()), r)
        .thenApply(DeleteResponse.class::cast);
  }

  public java.util.concurrent.CompletableFuture<TxnResponse> txnAsync(Session s, TxnRequest r) {
    return enqueue(s, "kv.txn", Right.WRITE, Txns.object(r), r).thenApply(TxnResponse.class::cast);
  }

  /** The current and compacted revisions, the store's size on disk and the number of live keys. */
  public Kv.Status status(Session s) {
    return kernel.call(s, "kv.status", Right.READ, "kv:", tx -> tx.queryOne(SIZE,
        rs -> new Kv.Status(rs.getLong(1), rs.getLong(2), rs.getLong(3), rs.getLong(4))).orElseThrow());
  }

  /**
   * HashKV: a hash of every kept revision of every key (rows above the compacted revision, up to
   * {@code revision}; 0 means the current one) and the compacted revision. Every node reads the one
   * database, so every member answers the same hash. {@link Kv#ERR_FUTURE_REV} beyond the
   * current revision, {@link Kv#ERR_COMPACTED} below the compacted one.
   */
  public Kv.Hash hashKv(Session s, long revision) {
    return kernel.call(s, "kv.hash", Right.READ, KeyRanges.rangeObject(new byte[0]), tx -> {
      var row = tx.queryOne(HASH, rs -> new long[] {rs.getLong(1), rs.getLong(2), rs.getLong(3)},
          revision > 0 ? revision : Long.MAX_VALUE).orElseThrow();
      if (revision > row[0]) {
        throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION, Kv.ERR_FUTURE_REV);
      }
      if (revision > 0 && revision < row[1]) {
        throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION, Kv.ERR_COMPACTED);
      }
      return new Kv.Hash(row[2], row[1], row[0]);
    });
  }

  /**
   * Snapshot reads the whole store as of one instant into {@code sink}: the clock, every history row
   * compaction kept and every lease, streamed (one fetch of 128 rows in memory at a time). Needs READ on every
   * key ({@code "kv:\\*"}), checked before anything is read; audited as {@code kv.snapshot}.
   */
  public void snapshot(Session s, Kv.SnapshotSink sink) {
    String object = KeyRanges.rangeObject(new byte[0]);
    kernel.call(s, "kv.snapshot", Right.READ, object, tx -> {
      tx.update("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); // one image across the statements
      var check = new AuditLog.Call(tx.callId(), s, "kv.snapshot", object, Right.READ);
      if (AuditLog.checkAll(tx.connection(), List.of(check))[0] != AuditLog.Verdict.ALLOWED) {
        throw SyscallException.denied("snapshot needs READ on " + object); // the kernel records why
      }
      long[] clock = clock(tx);
      sink.begin(clock[0], clock[1]);
      try (PreparedStatement ps = tx.prepare(SNAPSHOT_ROWS)) {
        ps.setFetchSize(128); // values reach 1.5 MiB: a fetch holds at most ~200 MB
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            sink.row(rs.getInt(7), new KeyValue(rs.getBytes(1), rs.getLong(2), rs.getLong(3), rs.getLong(4),
                rs.getLong(5), rs.getBytes(6)));
          }
        }
      }
      for (long[] l : tx.query(SNAPSHOT_LEASES, rs -> new long[] {rs.getLong(1), rs.getLong(2), rs.getLong(3)})) {
        sink.lease(l[0], l[1], l[2]);
      }
      return null;
    });
  }

  // ---- leases --------------------------------------------------------------------------------

  /**
   * Grant creates a lease that expires {@code ttl} seconds from now on the database clock (raised to
   * {@link #MIN_LEASE_TTL}). id 0 lets the server pick a positive id. Fails with ALREADY_EXISTS {@link
   * Kv#ERR_LEASE_EXISTS} for a taken id, INVALID_ARGUMENT {@link Kv#ERR_LEASE_TTL_TOO_LARGE}.
   */
  public LeaseGrant grant(Session s, long id, long ttl) {
    if (ttl > MAX_LEASE_TTL) {
      throw SyscallException.invalid(Kv.ERR_LEASE_TTL_TOO_LARGE);
    }
    long granted = Math.max(ttl, MIN_LEASE_TTL);
    long lid = id != 0 ? id : ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
    return kernel.call(s, "lease.grant", Right.WRITE, "lease:" + lid, tx -> {
      if (tx.update(GRANT, lid, granted, granted) == 0) {
        throw new SyscallException(SyscallException.Code.ALREADY_EXISTS, Kv.ERR_LEASE_EXISTS);
      }
      return new LeaseGrant(lid, granted, clock(tx)[0]);
    });
  }

  /** Revoke deletes the lease and, at one new revision, every key attached to it. NOT_FOUND if unknown. */
  public long revoke(Session s, long id) {
    return (Long) submit(s, "lease.revoke", Right.WRITE, "lease:" + id, new Revoke(id, false));
  }

  /**
   * KeepAlive restarts the lease's full TTL and returns it; 0 if the lease does not exist or has expired
   * (as etcd answers), even if no sweep has revoked it yet: its keys go with the next sweep.
   */
  public long keepAlive(Session s, long id) {
    return kernel.call(s, "lease.keepalive", Right.WRITE, "lease:" + id,
        tx -> tx.queryOne(KEEP_ALIVE, rs -> rs.getLong(1), id).orElse(0L));
  }

  /** The remaining TTL in whole seconds (−1 if the lease does not exist or has expired) and, if asked, its keys. */
  public LeaseTimeToLive timeToLive(Session s, long id, boolean keys) {
    return kernel.call(s, "lease.timetolive", Right.READ, "lease:" + id, tx -> {
      long rev = clock(tx)[0];
      var row = tx.queryOne(TIME_TO_LIVE, rs -> new long[] {rs.getLong(1), rs.getLong(2)}, id);
      if (row.isEmpty()) {
        return new LeaseTimeToLive(id, -1, 0, List.of(), rev);
      }
      List<byte[]> ks = keys ? tx.query(LEASE_KEYS, rs -> rs.getBytes(1), id) : List.of();
      return new LeaseTimeToLive(id, Math.max(0, row.get()[1]), row.get()[0], ks, rev);
    });
  }

  /** The ids of all leases. */
  public List<Long> leases(Session s) {
    return kernel.call(s, "lease.list", Right.READ, "lease:", tx -> tx.query(LEASES, rs -> rs.getLong(1)));
  }

  /**
   * The current revision (for response headers of calls that do not touch the store). Any caller with a
   * valid session may have it, whatever keys it may read: etcd puts it in every response's header.
   */
  public long revision(Session s) {
    return kernel.callChecked(s, "kv.revision", "kv:", true, tx -> clock(tx)[0]);
  }

  private static long[] clock(Tx tx) throws SQLException {
    return tx.queryOne(CLOCK, rs -> new long[] {rs.getLong(1), rs.getLong(2)}).orElseThrow();
  }

  /** Revokes expired leases. Every node sweeps; the guarded delete lets exactly one revoke each lease. */
  void sweepExpired() {
    if (closed) {
      return;
    }
    try {
      List<Long> ids = db.transaction(c -> {
        var out = new ArrayList<Long>();
        try (var rs = c.createStatement().executeQuery(EXPIRED)) {
          while (rs.next()) {
            out.add(rs.getLong(1));
          }
        }
        return out;
      });
      if (ids.isEmpty()) {
        return;
      }
      Session sys = kernel.system();
      var futures = new ArrayList<CompletableFuture<Object>>();
      for (long id : ids) {
        futures.add(enqueue(sys, "lease.expire", Right.WRITE, "lease:" + id, new Revoke(id, true)));
      }
      for (var f : futures) {
        try {
          f.get();
        } catch (ExecutionException e) {
          log.debug("lease expiry: {}", e.getCause().getMessage());
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (RuntimeException e) {
      log.warn("lease sweep failed: {}", e.getMessage());
    }
  }

  // ---- the writer ----------------------------------------------------------------------------

  private Object submit(Session s, String call, Right right, String object, Object request) {
    try {
      return enqueue(s, call, right, object, request).get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SyscallException(SyscallException.Code.UNAVAILABLE, "interrupted");
    } catch (ExecutionException e) {
      if (e.getCause() instanceof SyscallException se) {
        throw new SyscallException(se.code(), se.getMessage(), se);
      }
      throw new SyscallException(SyscallException.Code.INTERNAL, e.getCause().toString(), e.getCause());
    }
  }

  private CompletableFuture<Object> enqueue(Session s, String call, Right right, String object, Object request) {
    if (closed) {
      throw new SyscallException(SyscallException.Code.UNAVAILABLE, "the key-value store is closed");
    }
    var p = new Pending(s, call, object, right, request, Ids.uuid7(), new CompletableFuture<>());
    queue.add(p);
    return p.result;
  }

  private void writeLoop() {
    var batch = new ArrayList<Pending>(MAX_BATCH);
    while (!closed) {
      try {
        batch.add(queue.take());
      } catch (InterruptedException e) {
        break;
      }
      queue.drainTo(batch, MAX_BATCH - 1);
      run(batch);
      batch.clear();
    }
    for (Pending p; (p = queue.poll()) != null; ) {
      p.result.completeExceptionally(new SyscallException(SyscallException.Code.UNAVAILABLE, "the key-value store is closed"));
    }
  }

  private void run(List<Pending> batch) {
    long t0 = System.nanoTime();
    try {
      runBatch(batch, true);
      batchSize.record(batch.size());
      batchTime.record(System.nanoTime() - t0, TimeUnit.NANOSECONDS);
    } catch (RuntimeException e) {
      log.error("key-value writer failed", e);
      for (Pending p : batch) {
        p.result.completeExceptionally(e);
      }
    }
  }

  /**
   * Runs a batch in one transaction. A batch of plain Puts on distinct keys, when this writer knows the
   * clock, is one statement sent with its COMMIT ({@link #writePuts}); any other batch locks the clock,
   * checks every caller in one query, applies the requests in order and sends the last writes, the
   * audit rows and the clock with its COMMIT. A database error that is not a request's own fault fails
   * the whole transaction; then each request is re-run alone, so one bad request cannot sink the rest.
   */
  private void runBatch(List<Pending> batch, boolean mayRetryAlone) {
    if (knownRevision > 0 && slowBatches == 0 && PutRun.acceptsAll(batch) && writePuts(batch)) {
      return;
    }
    for (int attempt = 1; ; attempt++) {
      Object[] results = new Object[batch.size()];
      boolean commitSent = false;
      long committedRevision = -1;
      try (Connection c = db.connection()) {
        c.setAutoCommit(false);
        try {
          Clock clock = new Clock();
          try (PreparedStatement ps = c.prepareStatement(LOCK_CLOCK); ResultSet rs = ps.executeQuery()) {
            rs.next();
            clock.revision = rs.getLong(1);
            clock.compacted = rs.getLong(2);
          }
          long start = clock.revision;
          long startCompacted = clock.compacted;
          AuditLog.Verdict[] verdicts = AuditLog.checkAll(c, calls(batch));
          var run = new PutRun(putSql);
          String[] outcomes = new String[batch.size()];
          for (int i = 0; i < batch.size(); i++) {
            Pending p = batch.get(i);
            if (verdicts[i] != AuditLog.Verdict.ALLOWED) {
              results[i] = verdicts[i] == AuditLog.Verdict.INVALID_SESSION ? SyscallException.sessionEnded(p.session.principal())
                  : SyscallException.denied("'" + p.session.principal() + "' lacks " + p.right + " on " + p.object);
              outcomes[i] = "denied";
              continue;
            }
            if (p.request instanceof PutRequest put && run.accepts(put)) {
              clock.revision++;
              run.add(i, put, clock.revision);
              continue;
            }
            run.flush(c, results);
            try {
              results[i] = apply(c, clock, p.request);
            } catch (SyscallException e) {
              results[i] = e;
              outcomes[i] = "error";
            }
          }
          commitSent = true;
          // the last run of Puts, the audit rows and the clock write-back: one statement, sent with the COMMIT
          run.finish(c, results, batch, outcomes, clock, clock.revision != start || clock.compacted != startCompacted,
              clock.revision != start, watches.id());
          c.commit(); // a no-op: the COMMIT went with the statement; keeps the driver's state exact
          if (clock.revision != start) {
            committedRevision = clock.revision;
          }
          knownRevision = clock.revision;
          slowBatches = Math.max(0, slowBatches - 1);
        } catch (SQLException | RuntimeException e) {
          knownRevision = -1;
          Database.rollbackQuietly(c);
          throw e;
        } finally {
          try {
            c.setAutoCommit(true);
          } catch (SQLException ignored) {
            // broken connection: the pool discards it
          }
        }
      } catch (SQLException e) {
        if (commitSent && Database.isConnectionLoss(e) && AuditLog.committedAfterLoss(db, batch.getFirst().auditId)) {
          // the commit landed; fall through and answer
        } else if ((Database.isSerializationFailure(e) || Database.isConnectionLoss(e))
            && attempt < Database.MAX_ATTEMPTS) {
          Database.backoff(attempt);
          continue;
        } else if (mayRetryAlone && batch.size() > 1) {
          log.debug("write batch of {} failed ({}); re-running its requests one by one", batch.size(), e.getMessage());
          for (Pending p : batch) {
            runBatch(List.of(p), false);
          }
          return;
        } else {
          SyscallException se = e.getCause() instanceof SyscallException own ? own : Database.translate(e);
          for (Pending p : batch) {
            auditFailure(p, se);
            p.result.completeExceptionally(se);
          }
          return;
        }
      }
      if (committedRevision > 0) {
        watches.committed(committedRevision);
      }
      answer(batch, results);
      return;
    }
  }

  private static void answer(List<Pending> batch, Object[] results) {
    for (int i = 0; i < batch.size(); i++) {
      if (results[i] instanceof SyscallException se) {
        batch.get(i).result.completeExceptionally(se);
      } else {
        batch.get(i).result.complete(results[i]);
      }
    }
  }

  private static List<AuditLog.Call> calls(List<Pending> batch) {
    return batch.stream().map(p -> new AuditLog.Call(p.auditId, p.session, p.call, p.object, p.right)).toList();
  }

  /**
   * Plain Puts on distinct keys at the clock this writer last saw, in one round trip: a statement that
   * moves the clock (raising {@code DBOSK} if another node moved it first), writes {@code kv} and
   * {@code kv_history}, checks and audits every caller (raising {@code DBOSD} if any is refused),
   * followed by the COMMIT. A 1-client put is thus one round trip and one WAL flush. Returns false if
   * nothing was committed: the batch is then run under the lock, which answers refusals one by one.
   */
  private boolean writePuts(List<Pending> batch) {
    var run = new PutRun(putSql);
    long rev = knownRevision;
    for (int i = 0; i < batch.size(); i++) {
      run.add(i, (PutRequest) batch.get(i).request, ++rev);
    }
    Object[] results = new Object[batch.size()];
    try (Connection c = db.connection()) {
      c.setAutoCommit(false);
      try (PreparedStatement ps = c.prepareStatement(putSql.atKnownClock())) {
        ps.setLong(1, knownRevision);
        ps.setLong(2, rev);
        ps.setObject(3, watches.id());
        int n = run.bindPuts(c, ps, 4);
        AuditLog.bindCalls(c, ps, n, calls(batch));
        run.read(ps, results);
        c.commit(); // a no-op, as above
      } catch (SQLException | RuntimeException e) {
        Database.rollbackQuietly(c);
        throw e;
      } finally {
        c.setAutoCommit(true);
      }
    } catch (SQLException e) {
      knownRevision = -1;
      if (CLOCK_MOVED.equals(e.getSQLState())) {
        slowBatches = 100; // another node writes too: stop guessing for a while
      }
      if (!(Database.isConnectionLoss(e) && AuditLog.committedAfterLoss(db, batch.getFirst().auditId))) {
        log.debug("fast write of {} puts not committed ({}); re-running under the clock lock", batch.size(),
            e.getMessage());
        return false;
      }
      // committed, but its rows were lost with the connection: answers without prev_kv, the hub reads history
      watches.committed(rev);
      answer(batch, results);
      return true;
    }
    knownRevision = rev;
    watches.committed(rev - batch.size() + 1, rev, run.events);
    answer(batch, results);
    return true;
  }

  /** The SET LOCALs {@link PutSql#atKnownClock} begins with: results to skip before its rows. */
  private static final int PLAN_SETTINGS = 3;

  /** The end of a locked batch: the audit rows (one per request) and the clock, after {@link PutSql#write}. */
  private static final String FINISH = """
      audited AS (%s),
      c AS (UPDATE kv_revision SET revision = ?, compacted = ? WHERE ?
            RETURNING CASE WHEN ? AND %s THEN pg_notify('dbos_kv', revision::text) END)
      """.formatted(AuditLog.APPEND_ALL, Watches.WATCHED_ELSEWHERE);

  private static final String INPUT = "input AS (SELECT * FROM unnest(?::bytea[], ?::bytea[], ?::bigint[]) AS t(key, value, rev)),\n";
  /**
   * Writes the Puts of {@code input}: upsert {@code kv}, append {@code kv_history}; {@code prev} is what
   * they replaced, one index probe per key (the LIMIT keeps the planner from a hash join over all of
   * {@code kv}, which a plan cached while the table was small would otherwise keep choosing).
   */
  private static final String WRITE_PUTS_PROBED = """
      prev AS (SELECT k.* FROM input i CROSS JOIN LATERAL (
                 SELECT key, create_revision, mod_revision, version, lease, value FROM kv WHERE key = i.key LIMIT 1) k),
      up AS (INSERT INTO kv AS k (key, create_revision, mod_revision, version, lease, value)
             SELECT key, rev, rev, 1, 0, value FROM input
             ON CONFLICT (key) DO UPDATE SET mod_revision = EXCLUDED.mod_revision, version = k.version + 1,
               lease = 0, value = EXCLUDED.value
             RETURNING key, create_revision, mod_revision, version, lease, value),
      h AS (INSERT INTO kv_history (key, mod_revision, seq, create_revision, version, lease, value)
            SELECT key, mod_revision, 0, create_revision, version, lease, value FROM up),
      """;
  /**
   * The same on PostgreSQL 18 and later, whose upsert returns the row it replaced ({@code old}, null
   * for an inserted key): no probe of {@code kv} before it (a 110-Put batch's statement 2.02–2.06 →
   * 1.85–1.89 ms, see BENCHMARKS).
   */
  private static final String WRITE_PUTS_RETURNING_OLD = """
      up AS (INSERT INTO kv AS k (key, create_revision, mod_revision, version, lease, value)
             SELECT key, rev, rev, 1, 0, value FROM input
             ON CONFLICT (key) DO UPDATE SET mod_revision = EXCLUDED.mod_revision, version = k.version + 1,
               lease = 0, value = EXCLUDED.value
             RETURNING new.key, new.create_revision, new.mod_revision, new.version, new.lease, new.value,
               old.create_revision AS old_create_revision, old.mod_revision AS old_mod_revision,
               old.version AS old_version, old.lease AS old_lease, old.value AS old_value),
      h AS (INSERT INTO kv_history (key, mod_revision, seq, create_revision, version, lease, value)
            SELECT key, mod_revision, 0, create_revision, version, lease, value FROM up),
      """;

  /**
   * {@link PutSql#atKnownClock} up to its writes: the clock moves first (input reads it), so the writes
   * wait for any other writer; the audit CTE runs last and raises if a caller is refused, rolling
   * everything back.
   *
   * <p>Planned once per connection: left to itself PostgreSQL plans it anew for every batch (a custom
   * plan always looks cheaper to it for these array parameters), and that planning took 0.26 ms per
   * batch against 0.14 ms of execution for a batch of one Put. The one generic plan must not depend on
   * the size {@code kv} had when it was made (a sequential scan chosen while the table was small would
   * stay): with sequential scans off it reads {@code kv} and {@code sessions} by index probes.
   */
  private static final String AT_KNOWN_CLOCK = """
      SET LOCAL plan_cache_mode = force_generic_plan;
      SET LOCAL enable_seqscan = off;
      SET LOCAL jit = off;
      WITH c AS (UPDATE kv_revision SET revision = CASE WHEN revision = ? THEN ?::bigint ELSE kv_clock_moved() END
                 RETURNING CASE WHEN %s THEN pg_notify('dbos_kv', revision::text) END),
      input AS (SELECT t.* FROM c, unnest(?::bytea[], ?::bytea[], ?::bigint[]) AS t(key, value, rev)),
      """.formatted(Watches.WATCHED_ELSEWHERE);

  /**
   * The statements that write runs of Puts: CTEs {@code write} (after {@code input}) and {@code prev},
   * the query of the replaced rows; {@code many} alone; {@code atKnownClock}, {@link #writePuts}'s.
   */
  private record PutSql(String write, String prev, String many, String atKnownClock) {
    static PutSql of(String write, String prev) {
      return new PutSql(write, prev, "WITH " + INPUT + write.strip().replaceAll(",$", "") + "\n" + prev,
          AT_KNOWN_CLOCK + write + "audited AS (" + AuditLog.CHECKED_APPEND_ALL + ")\n" + prev + ";\nCOMMIT");
    }
  }

  private static final PutSql PROBED = PutSql.of(WRITE_PUTS_PROBED,
      "SELECT key, create_revision, mod_revision, version, lease, value FROM prev");
  private static final PutSql RETURNING_OLD = PutSql.of(WRITE_PUTS_RETURNING_OLD,
      "SELECT key, old_create_revision, old_mod_revision, old_version, old_lease, old_value FROM up"
      + " WHERE old_version IS NOT NULL");

  /**
   * Consecutive plain Puts (no lease, no ignore flags) on distinct keys, written by one statement;
   * each still has its own revision, response and audit row.
   */
  private static final class PutRun {
    final PutSql sql;
    final List<Integer> index = new ArrayList<>();
    final List<PutRequest> puts = new ArrayList<>();
    final List<Long> revs = new ArrayList<>();
    final java.util.Set<java.nio.ByteBuffer> keys = new java.util.HashSet<>();
    /** The events the last {@link #read} wrote, in revision order. */
    List<Event> events = List.of();

    PutRun(PutSql sql) {
      this.sql = sql;
    }

    static boolean acceptsAll(List<Pending> batch) {
      var keys = new java.util.HashSet<java.nio.ByteBuffer>();
      for (Pending p : batch) {
        if (!(p.request instanceof PutRequest put) || !plain(put) || !keys.add(java.nio.ByteBuffer.wrap(put.key()))) {
          return false;
        }
      }
      return true;
    }

    static boolean plain(PutRequest p) {
      return p.key() != null && p.key().length > 0 && p.key().length <= MAX_KEY_BYTES && p.lease() == 0
          && !p.ignoreLease() && !p.ignoreValue();
    }

    boolean accepts(PutRequest p) {
      return plain(p) && !keys.contains(java.nio.ByteBuffer.wrap(p.key()));
    }

    void add(int i, PutRequest p, long rev) {
      index.add(i);
      puts.add(p);
      revs.add(rev);
      keys.add(java.nio.ByteBuffer.wrap(p.key()));
    }

    void flush(Connection c, Object[] results) throws SQLException {
      if (!puts.isEmpty()) {
        try (PreparedStatement ps = c.prepareStatement(sql.many())) {
          bindPuts(c, ps, 1);
          read(ps, results);
        }
      }
    }

    /**
     * Flushes the run together with the batch's audit rows and clock write-back, followed by the
     * COMMIT: a batch of plain Puts under the lock costs three round trips (lock, check, this).
     */
    void finish(Connection c, Object[] results, List<Pending> batch, String[] outcomes, Clock clock,
                boolean clockMoved, boolean notify, java.util.UUID hub) throws SQLException {
      String statement = "WITH " + (puts.isEmpty() ? "" : INPUT + sql.write()) + FINISH
          + (puts.isEmpty() ? "SELECT 1 WHERE false" : sql.prev()) + ";\nCOMMIT";
      try (PreparedStatement ps = c.prepareStatement(statement)) {
        int n = puts.isEmpty() ? 1 : bindPuts(c, ps, 1);
        int size = batch.size();
        var outs = new String[size];
        var details = new String[size];
        for (int i = 0; i < size; i++) {
          outs[i] = outcomes[i] == null ? "ok" : outcomes[i];
          if (results[i] instanceof SyscallException e) {
            details[i] = outs[i].equals("denied") ? "missing right " + batch.get(i).right : e.code() + ": " + e.getMessage();
          }
        }
        n = AuditLog.bindCalls(c, ps, n, calls(batch));
        n = AuditLog.bindOutcomes(c, ps, n, outs, details);
        ps.setLong(n++, clock.revision);
        ps.setLong(n++, clock.compacted);
        ps.setBoolean(n++, clockMoved);
        ps.setBoolean(n++, notify);
        ps.setObject(n, hub);
        read(ps, results);
      }
    }

    int bindPuts(Connection c, PreparedStatement ps, int from) throws SQLException {
      ps.setArray(from, c.createArrayOf("bytea", puts.stream().map(PutRequest::key).toArray(byte[][]::new)));
      ps.setArray(from + 1, c.createArrayOf("bytea", puts.stream().map(p -> p.value() == null ? new byte[0] : p.value())
          .toArray(byte[][]::new)));
      ps.setArray(from + 2, c.createArrayOf("bigint", revs.toArray(Long[]::new)));
      return from + 3;
    }

    /** Runs the statement (which may end with a COMMIT) and answers each Put of the run from its rows. */
    void read(PreparedStatement ps, Object[] results) throws SQLException {
      for (int j = 0; j < puts.size(); j++) {
        results[index.get(j)] = new PutResponse(revs.get(j), null); // the answer if the COMMIT's reply is lost
      }
      var prev = new java.util.HashMap<java.nio.ByteBuffer, KeyValue>();
      boolean rows = ps.execute();
      for (int settings = 0; !rows && settings < PLAN_SETTINGS; settings++) {
        rows = ps.getMoreResults();
      }
      try (ResultSet rs = ps.getResultSet()) {
        while (rs.next()) {
          byte[] k = rs.getBytes(1);
          prev.put(java.nio.ByteBuffer.wrap(k),
              new KeyValue(k, rs.getLong(2), rs.getLong(3), rs.getLong(4), rs.getLong(5), rs.getBytes(6)));
        }
      }
      events = new ArrayList<>(puts.size());
      for (int j = 0; j < puts.size(); j++) {
        PutRequest p = puts.get(j);
        long rev = revs.get(j);
        KeyValue before = prev.get(java.nio.ByteBuffer.wrap(p.key()));
        results[index.get(j)] = new PutResponse(rev, p.prevKv() ? before : null);
        byte[] value = p.value() == null ? new byte[0] : p.value();
        events.add(new Event(Event.Type.PUT, before == null ? new KeyValue(p.key(), rev, rev, 1, 0, value)
            : new KeyValue(p.key(), before.createRevision(), rev, before.version() + 1, 0, value), before));
      }
      index.clear();
      puts.clear();
      revs.clear();
      keys.clear();
    }
  }

  private void auditFailure(Pending p, SyscallException e) {
    try {
      db.transaction(c -> {
        AuditLog.append(c, p.auditId, p.session, p.call, p.object, "error", e.code() + ": " + e.getMessage());
        return null;
      });
    } catch (RuntimeException ignored) {
      log.warn("could not audit failed call {} on {}", p.call, p.object);
    }
  }

  /** Applies one request inside the batch; throws SyscallException only before it has written anything. */
  private Object apply(Connection c, Clock clock, Object request) throws SQLException {
    return switch (request) {
      case PutRequest put -> {
        Txns.validate(put);
        Txns.checkPut(c, put);
        long rev = clock.revision + 1;
        KeyValue prev = put(c, put, rev, 0);
        clock.revision = rev;
        yield new PutResponse(rev, put.prevKv() ? prev : null);
      }
      case DeleteRequest del -> {
        requireKey(del.key());
        long rev = clock.revision + 1;
        List<KeyValue> prev = delete(c, del.key(), del.rangeEnd(), null, del.prevKv(), rev, 0);
        if (!prev.isEmpty()) {
          clock.revision = rev;
        }
        yield new DeleteResponse(clock.revision, prev.size(), del.prevKv() ? prev : List.of());
      }
      case TxnRequest txn -> new Txns(this, c, clock.revision, clock.compacted).run(txn, clock);
      case Compact cp -> {
        if (cp.revision() <= clock.compacted) {
          throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION, Kv.ERR_COMPACTED);
        }
        if (cp.revision() > clock.revision) {
          throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION, Kv.ERR_FUTURE_REV);
        }
        try (PreparedStatement ps = c.prepareStatement(COMPACT)) {
          ps.setLong(1, cp.revision());
          ps.setLong(2, cp.revision());
          ps.executeUpdate();
        }
        clock.compacted = cp.revision();
        yield new CompactResponse(clock.revision);
      }
      case Revoke rv -> {
        boolean found;
        try (PreparedStatement ps = c.prepareStatement(rv.expiredOnly() ? REVOKE_EXPIRED : REVOKE)) {
          ps.setLong(1, rv.id());
          try (ResultSet rs = ps.executeQuery()) {
            found = rs.next();
          }
        }
        if (!found) {
          if (rv.expiredOnly()) {
            yield clock.revision;
          }
          throw SyscallException.notFound(Kv.ERR_LEASE_NOT_FOUND);
        }
        long rev = clock.revision + 1;
        if (!delete(c, null, null, rv.id(), false, rev, 0).isEmpty()) {
          clock.revision = rev;
        }
        yield clock.revision;
      }
      default -> throw new IllegalArgumentException("unknown request " + request);
    };
  }

  // ---- statements shared with Txn -------------------------------------------------------------

  /** Writes one Put at {@code rev}; returns the previous kv (null if the key was absent). */
  KeyValue put(Connection c, PutRequest r, long rev, int seq) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(PUT)) {
      ps.setBytes(1, r.key());
      ps.setBytes(2, r.key());
      ps.setLong(3, rev);
      ps.setLong(4, rev);
      ps.setLong(5, r.lease());
      ps.setBytes(6, r.value() == null ? new byte[0] : r.value());
      ps.setBoolean(7, r.ignoreLease());
      ps.setBoolean(8, r.ignoreValue());
      ps.setInt(9, seq);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) {
          return null;
        }
        return new KeyValue(r.key(), rs.getLong(1), rs.getLong(2), rs.getLong(3), rs.getLong(4), rs.getBytes(5));
      }
    }
  }

  /** Deletes the keys in the range (or attached to {@code lease}) at {@code rev}; returns what was deleted. */
  List<KeyValue> delete(Connection c, byte[] key, byte[] end, Long lease, boolean withValues, long rev, int seq)
      throws SQLException {
    var args = new ArrayList<Object>();
    String cond;
    if (lease != null) {
      cond = "lease = ?";
      args.add(lease);
    } else {
      cond = KeyRanges.condition(key, end, args);
      if (!KeyRanges.single(end) && !KeyRanges.fromKey(end) && Arrays.compareUnsigned(key, end) >= 0) {
        return List.of();
      }
    }
    args.add(rev);
    args.add(seq);
    args.add(withValues);
    try (PreparedStatement ps = c.prepareStatement(DELETE.formatted(cond))) {
      Tx.bind(ps, args.toArray());
      var out = new ArrayList<KeyValue>();
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(new KeyValue(rs.getBytes(1), rs.getLong(2), rs.getLong(3), rs.getLong(4), rs.getLong(5),
              rs.getBytes(6)));
        }
      }
      return out;
    }
  }

  static boolean leaseExists(Connection c, long lease) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(LEASE_EXISTS)) {
      ps.setLong(1, lease);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next();
      }
    }
  }

  static boolean keyExists(Connection c, byte[] key) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(KEY_EXISTS)) {
      ps.setBytes(1, key);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next();
      }
    }
  }

  static void requireKey(byte[] key) {
    if (key == null || key.length == 0) {
      throw SyscallException.invalid(Kv.ERR_EMPTY_KEY);
    }
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    sweeper.shutdownNow();
    writer.interrupt();
    try {
      writer.join(5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    watches.close();
  }
}
