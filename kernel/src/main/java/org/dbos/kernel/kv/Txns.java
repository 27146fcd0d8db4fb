package org.dbos.kernel.kv;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.Tx;
import org.dbos.kernel.kv.Kv.*;

/**
 * One Txn inside a write batch, as etcd runs it: static checks (op counts, duplicate writes), every
 * branch decided against the state before the Txn, every Put and every Range's revision on the chosen
 * path checked against that state, and only then the ops applied in order at one shared revision. A
 * Txn fails only before its first write: the batch's transaction commits the other callers' requests,
 * so a Txn that failed half-way would leave its first writes behind at a revision the clock never took.
 */
final class Txns {
  private final KvStore store;
  private final Connection c;
  private final long startRevision;
  private final long compacted;
  private final long rev;
  private int seq;
  private boolean wrote;

  Txns(KvStore store, Connection c, long startRevision, long compacted) {
    this.store = store;
    this.c = c;
    this.startRevision = startRevision;
    this.compacted = compacted;
    this.rev = startRevision + 1;
  }

  // ---- static checks --------------------------------------------------------------------------

  static void validate(PutRequest p) {
    KvStore.requireKey(p.key());
    if (p.key().length > KvStore.MAX_KEY_BYTES) {
      throw SyscallException.invalid("key is too large: " + p.key().length + " bytes, at most " + KvStore.MAX_KEY_BYTES);
    }
    if (p.ignoreValue() && p.value() != null && p.value().length > 0) {
      throw SyscallException.invalid(Kv.ERR_VALUE_PROVIDED);
    }
    if (p.ignoreLease() && p.lease() != 0) {
      throw SyscallException.invalid(Kv.ERR_LEASE_PROVIDED);
    }
  }

  static void checkPut(Connection c, PutRequest p) throws SQLException {
    if ((p.ignoreValue() || p.ignoreLease()) && !KvStore.keyExists(c, p.key())) {
      throw SyscallException.invalid(Kv.ERR_KEY_NOT_FOUND);
    }
    if (p.lease() != 0 && !p.ignoreLease() && !KvStore.leaseExists(c, p.lease())) {
      throw SyscallException.notFound(Kv.ERR_LEASE_NOT_FOUND);
    }
  }

  private static void checkShape(TxnRequest t) {
    if (t.compare().size() > KvStore.MAX_TXN_OPS || t.success().size() > KvStore.MAX_TXN_OPS
        || t.failure().size() > KvStore.MAX_TXN_OPS) {
      throw SyscallException.invalid(Kv.ERR_TOO_MANY_OPS);
    }
    for (Compare cmp : t.compare()) {
      KvStore.requireKey(cmp.key());
    }
    for (List<Op> ops : List.of(t.success(), t.failure())) {
      for (Op op : ops) {
        switch (op) {
          case RangeRequest r -> KvStore.requireKey(r.key());
          case PutRequest p -> validate(p);
          case DeleteRequest d -> KvStore.requireKey(d.key());
          case TxnRequest n -> checkShape(n);
        }
      }
    }
  }

  private record Range(byte[] key, byte[] end) {}

  private record Writes(Set<String> puts, List<Range> dels) {}

  /** etcd's checkIntervals: a key put twice, or put and deleted, on one path is a duplicate. */
  private static Writes checkIntervals(List<Op> ops) {
    var dels = new ArrayList<Range>();
    for (Op op : ops) {
      if (op instanceof DeleteRequest d) {
        dels.add(new Range(d.key(), d.rangeEnd()));
      }
    }
    Set<String> puts = new HashSet<>();
    for (Op op : ops) {
      if (!(op instanceof TxnRequest n)) {
        continue;
      }
      Writes then = checkIntervals(n.success());
      Writes otherwise = checkIntervals(n.failure());
      for (String k : then.puts) {
        if (puts.contains(k) || deleted(dels, k)) {
          throw SyscallException.invalid(Kv.ERR_DUPLICATE_KEY);
        }
        puts.add(k);
      }
      for (String k : otherwise.puts) {
        if ((puts.contains(k) && !then.puts.contains(k)) || deleted(dels, k)) {
          throw SyscallException.invalid(Kv.ERR_DUPLICATE_KEY);
        }
        puts.add(k);
      }
      dels.addAll(then.dels);
      dels.addAll(otherwise.dels);
    }
    for (Op op : ops) {
      if (op instanceof PutRequest p) {
        String k = new String(p.key(), java.nio.charset.StandardCharsets.ISO_8859_1);
        if (puts.contains(k) || deleted(dels, k)) {
          throw SyscallException.invalid(Kv.ERR_DUPLICATE_KEY);
        }
        puts.add(k);
      }
    }
    return new Writes(puts, dels);
  }

  private static boolean deleted(List<Range> dels, String k) {
    byte[] key = k.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
    for (Range r : dels) {
      if (KeyRanges.contains(r.key, r.end, key)) {
        return true;
      }
    }
    return false;
  }

  /**
   * The rights object of a Txn: the key's object if every compare and op names one and the same key,
   * else the range object of the prefix all the keys it names share ({@link KeyRanges#object}).
   */
  static String object(TxnRequest t) {
    var acc = new Keys();
    collect(t, acc);
    if (acc.prefix == null) {
      return KeyRanges.rangeObject(new byte[0]);
    }
    return acc.oneKey ? KeyRanges.keyObject(acc.prefix) : KeyRanges.rangeObject(acc.prefix);
  }

  /** What the keys a Txn names have in common: their shared prefix, and whether they are one key. */
  private static final class Keys {
    byte[] prefix;
    boolean oneKey = true;

    void add(byte[] key, byte[] end) {
      boolean single = KeyRanges.single(end);
      byte[] p = KeyRanges.sharedPrefix(key, end);
      oneKey &= single && (prefix == null || java.util.Arrays.equals(prefix, p));
      prefix = prefix == null ? p : KeyRanges.commonPrefix(prefix, p);
    }
  }

  private static void collect(TxnRequest t, Keys acc) {
    for (Compare cmp : t.compare()) {
      acc.add(nz(cmp.key()), cmp.rangeEnd());
    }
    for (List<Op> ops : List.of(t.success(), t.failure())) {
      for (Op op : ops) {
        switch (op) {
          case RangeRequest r -> acc.add(nz(r.key()), r.rangeEnd());
          case PutRequest p -> acc.add(nz(p.key()), null);
          case DeleteRequest d -> acc.add(nz(d.key()), d.rangeEnd());
          case TxnRequest n -> collect(n, acc);
        }
      }
    }
  }

  private static byte[] nz(byte[] b) {
    return b == null ? new byte[0] : b;
  }

  // ---- execution ------------------------------------------------------------------------------

  /** The branch each Txn on the path takes, decided before anything is written. */
  private record Path(boolean succeeded, List<Path> nested) {}

  TxnResponse run(TxnRequest t, KvStore.Clock clock) throws SQLException {
    checkShape(t);
    checkIntervals(t.success());
    checkIntervals(t.failure());
    Path path = decide(t);
    checkPath(t, path, op -> {
      if (op instanceof PutRequest p) {
        checkPut(c, p);
      }
    });
    // etcd's checkRequestRange: a Range at a revision compacted or beyond the state before the Txn fails it
    checkPath(t, path, op -> {
      if (op instanceof RangeRequest r) {
        Reads.checkRevision(r, startRevision, compacted);
      }
    });
    TxnResponse resp;
    try {
      resp = execute(t, path);
    } catch (SyscallException e) {
      if (!wrote) {
        throw e;
      }
      // cannot happen after the checks above; if it ever does, fail the batch's transaction (its other
      // requests are re-run alone) rather than commit part of a Txn
      throw new SQLException("a Txn failed after writing: " + e.getMessage(), "XX000", e);
    }
    if (wrote) {
      clock.revision = rev;
      return new TxnResponse(rev, resp.succeeded(), resp.responses());
    }
    return resp;
  }

  private Path decide(TxnRequest t) throws SQLException {
    boolean ok = true;
    for (Compare cmp : t.compare()) {
      if (!holds(cmp)) {
        ok = false;
        break;
      }
    }
    var nested = new ArrayList<Path>();
    for (Op op : ok ? t.success() : t.failure()) {
      if (op instanceof TxnRequest n) {
        nested.add(decide(n));
      }
    }
    return new Path(ok, nested);
  }

  /** A check of one op on a Txn's chosen path, made before the Txn writes anything. */
  private interface OpCheck {
    void check(Op op) throws SQLException;
  }

  /** Runs {@code check} on every op of the chosen path, nested Txns' included (etcd's checkRequests). */
  private static void checkPath(TxnRequest t, Path path, OpCheck check) throws SQLException {
    int i = 0;
    for (Op op : path.succeeded ? t.success() : t.failure()) {
      if (op instanceof TxnRequest n) {
        checkPath(n, path.nested.get(i++), check);
      } else {
        check.check(op);
      }
    }
  }

  private TxnResponse execute(TxnRequest t, Path path) throws SQLException {
    var responses = new ArrayList<OpResponse>();
    int i = 0;
    for (Op op : path.succeeded ? t.success() : t.failure()) {
      switch (op) {
        case RangeRequest r -> responses.add(Reads.range(c, r, wrote ? rev : startRevision, compacted));
        case PutRequest p -> {
          KeyValue prev = store.put(c, p, rev, seq++);
          wrote = true;
          responses.add(new PutResponse(rev, p.prevKv() ? prev : null));
        }
        case DeleteRequest d -> {
          List<KeyValue> gone = store.delete(c, d.key(), d.rangeEnd(), null, d.prevKv(), rev, seq);
          seq += gone.size();
          wrote |= !gone.isEmpty();
          responses.add(new DeleteResponse(wrote ? rev : startRevision, gone.size(), d.prevKv() ? gone : List.of()));
        }
        case TxnRequest n -> responses.add(execute(n, path.nested.get(i++)));
      }
    }
    return new TxnResponse(wrote ? rev : startRevision, path.succeeded, responses);
  }

  private static final String COMPARE_ONE = "SELECT create_revision, mod_revision, version, lease, value FROM kv WHERE key = ?";
  private static final String COMPARE_RANGE = "SELECT create_revision, mod_revision, version, lease, value FROM kv WHERE %s";

  /** True if every key in the compare's range satisfies it; an empty range compares a zero kv (VALUE: false). */
  private boolean holds(Compare cmp) throws SQLException {
    var args = new ArrayList<Object>();
    String sql;
    if (KeyRanges.single(cmp.rangeEnd())) {
      sql = COMPARE_ONE;
      args.add(cmp.key());
    } else {
      sql = COMPARE_RANGE.formatted(KeyRanges.condition(cmp.key(), cmp.rangeEnd(), args));
    }
    boolean any = false;
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      Tx.bind(ps, args.toArray());
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          any = true;
          if (!compare(cmp, rs.getLong(1), rs.getLong(2), rs.getLong(3), rs.getLong(4), rs.getBytes(5))) {
            return false;
          }
        }
      }
    }
    if (!any) {
      return cmp.target() != Compare.Target.VALUE && compare(cmp, 0, 0, 0, 0, null);
    }
    return true;
  }

  private static boolean compare(Compare cmp, long create, long mod, long version, long lease, byte[] value) {
    int r = switch (cmp.target()) {
      case VERSION -> Long.compare(version, cmp.number());
      case CREATE -> Long.compare(create, cmp.number());
      case MOD -> Long.compare(mod, cmp.number());
      case LEASE -> Long.compare(lease, cmp.number());
      case VALUE -> Arrays.compareUnsigned(value == null ? new byte[0] : value,
          cmp.value() == null ? new byte[0] : cmp.value());
    };
    return switch (cmp.result()) {
      case EQUAL -> r == 0;
      case NOT_EQUAL -> r != 0;
      case GREATER -> r > 0;
      case LESS -> r < 0;
    };
  }
}
