package org.dbos.kernel.kv;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.Tx;
import org.dbos.kernel.kv.Kv.*;
import org.dbos.kernel.security.AuditLog;

/**
 * Range as one SQL statement, so the revision, the count and the rows come from one snapshot: live
 * keys from {@code kv}, or at an older revision the newest row per key at or below it from
 * {@code kv_history} (dropping tombstones).
 */
final class Reads {
  private Reads() {}

  private static final String COLUMNS = "key, create_revision, mod_revision, version, lease, value";
  private static final String AT_REVISION = """
      (SELECT * FROM (SELECT DISTINCT ON (key) %s FROM kv_history WHERE mod_revision <= ? AND %s
                      ORDER BY key, mod_revision DESC) latest WHERE version > 0)""";

  /**
   * A Range of one key at the current revision, etcd's most common read: the clock and at most one row,
   * by one index probe, without the general statement's count subquery, lateral join and sort
   * (statement and COMMIT in one JDBC transaction, p50: 0.048–0.056 ms general, 0.037–0.039 ms this).
   * It carries the call's check and audit row ({@link AuditLog#audited}): the whole read is one round
   * trip with its COMMIT ({@link org.dbos.kernel.Tx#lastAudited}). Its only parameter is the key.
   */
  static final String ONE_KEY = AuditLog.audited("""
      WITH k AS (SELECT create_revision, mod_revision, version, lease, value FROM kv WHERE key = ?)
      SELECT c.revision, c.compacted, k.create_revision, k.mod_revision, k.version, k.lease, k.value
      FROM kv_revision c LEFT JOIN k ON true""");

  /** Whether {@code r} reads one key at the current revision, without filters: {@link #ONE_KEY}'s case. */
  static boolean oneKeyNow(RangeRequest r) {
    return r.revision() <= 0 && KeyRanges.single(r.rangeEnd()) && r.minModRevision() <= 0
        && r.maxModRevision() <= 0 && r.minCreateRevision() <= 0 && r.maxCreateRevision() <= 0;
  }

  /** {@link #range} of one key now from {@link #ONE_KEY}'s row: limit and sort order cannot matter for at most one row. */
  static RangeResponse oneKey(ResultSet rs, RangeRequest r) throws SQLException {
    long current = rs.getLong(1);
    byte[] v = rs.getBytes(7);
    if (v == null) {
      return new RangeResponse(current, List.of(), false, 0);
    }
    List<KeyValue> kvs = r.countOnly() ? List.of() : List.of(new KeyValue(r.key(), rs.getLong(3), rs.getLong(4),
        rs.getLong(5), rs.getLong(6), r.keysOnly() ? new byte[0] : v));
    return new RangeResponse(current, kvs, false, 1);
  }

  /**
   * Runs {@code r} by the general statement. Outside a write batch pass {@code revision} −1: the
   * statement reads the clock. Inside one, pass the batch's current and compacted revisions (its writes
   * are visible on {@code c}).
   */
  static RangeResponse range(Connection c, RangeRequest r, long revision, long compacted) throws SQLException {
    Statement st = statement(r, revision);
    try (PreparedStatement ps = c.prepareStatement(st.sql())) {
      Tx.bind(ps, st.args());
      try (ResultSet rs = ps.executeQuery()) {
        return read(rs, r, revision, compacted);
      }
    }
  }

  /** The general statement of a Range and its parameters. */
  record Statement(String sql, Object[] args) {}

  /** {@link #range}'s statement: the clock, the count and the rows (a row per key; one if none). */
  static Statement statement(RangeRequest r, long revision) {
    byte[] key = r.key();
    byte[] end = r.rangeEnd();
    boolean empty = !KeyRanges.single(end) && !KeyRanges.fromKey(end) && Arrays.compareUnsigned(key, end) >= 0;
    boolean historical = r.revision() > 0 && (revision < 0 || r.revision() < revision);

    var args = new ArrayList<Object>();
    String source;
    var condArgs = new ArrayList<Object>();
    String cond = empty ? "false" : KeyRanges.condition(key, end, condArgs);
    if (historical) {
      source = AT_REVISION.formatted(COLUMNS, cond);
    } else {
      source = "kv";
    }
    String sourceCond = historical ? "true" : cond;

    String order = order(r);
    var filters = new StringBuilder(sourceCond);
    var filterArgs = new ArrayList<Object>();
    if (r.minModRevision() > 0) {
      filters.append(" AND mod_revision >= ?");
      filterArgs.add(r.minModRevision());
    }
    if (r.maxModRevision() > 0) {
      filters.append(" AND mod_revision <= ?");
      filterArgs.add(r.maxModRevision());
    }
    if (r.minCreateRevision() > 0) {
      filters.append(" AND create_revision >= ?");
      filterArgs.add(r.minCreateRevision());
    }
    if (r.maxCreateRevision() > 0) {
      filters.append(" AND create_revision <= ?");
      filterArgs.add(r.maxCreateRevision());
    }
    long fetch = r.countOnly() ? 0 : r.limit() > 0 ? r.limit() + 1 : Long.MAX_VALUE;
    String value = r.keysOnly() && r.sortTarget() != SortTarget.VALUE ? "NULL::bytea AS value" : "s.value";
    String sql = "SELECT c.revision, c.compacted, (SELECT count(*) FROM " + source + " s WHERE " + sourceCond
        + ") AS total, k.key, k.create_revision, k.mod_revision, k.version, k.lease, k.value FROM kv_revision c"
        + " LEFT JOIN LATERAL (SELECT key, create_revision, mod_revision, version, lease, " + value
        + " FROM " + source + " s WHERE " + filters + " ORDER BY " + order.replace("@", "s.") + " LIMIT ?) k ON true ORDER BY "
        + order.replace("@", "k.");
    // parameters in text order: count subquery, then the rows subquery
    addSource(args, historical, r.revision(), condArgs);
    addSource(args, historical, r.revision(), condArgs);
    args.addAll(filterArgs);
    args.add(fetch);
    return new Statement(sql, args.toArray());
  }

  /**
   * The response from {@link #statement}'s result ({@code revision} and {@code compacted} as for {@link
   * #range}): FAILED_PRECONDITION if {@code r} asks for a revision compacted away or not yet written.
   */
  static RangeResponse read(ResultSet rs, RangeRequest r, long revision, long compacted) throws SQLException {
    long current = revision;
    long compactedRev = compacted;
    long total = 0;
    var kvs = new ArrayList<KeyValue>();
    while (rs.next()) {
      if (revision < 0) {
        current = rs.getLong(1);
        compactedRev = rs.getLong(2);
      }
      total = rs.getLong(3);
      byte[] k = rs.getBytes(4);
      if (k != null) {
        byte[] v = rs.getBytes(9);
        kvs.add(new KeyValue(k, rs.getLong(5), rs.getLong(6), rs.getLong(7), rs.getLong(8),
            v == null || r.keysOnly() ? new byte[0] : v));
      }
    }
    checkRevision(r, current, compactedRev);
    boolean more = false;
    if (r.limit() > 0 && kvs.size() > r.limit()) {
      kvs.subList((int) r.limit(), kvs.size()).clear();
      more = true;
    }
    return new RangeResponse(current, kvs, more, total);
  }

  /** FAILED_PRECONDITION if {@code r} asks for a revision below {@code compacted} or above {@code current}. */
  static void checkRevision(RangeRequest r, long current, long compacted) {
    if (r.revision() > 0) {
      if (r.revision() < compacted) {
        throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION, Kv.ERR_COMPACTED);
      }
      if (r.revision() > current) {
        throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION, Kv.ERR_FUTURE_REV);
      }
    }
  }

  private static void addSource(List<Object> args, boolean historical, long rev, List<Object> condArgs) {
    if (historical) {
      args.add(rev);
    }
    args.addAll(condArgs);
  }

  /** etcd's order: by key unless a target or order is given; order NONE with another target means ASCEND. */
  private static String order(RangeRequest r) {
    String column = switch (r.sortTarget() == null ? SortTarget.KEY : r.sortTarget()) {
      case KEY -> "key";
      case VERSION -> "version";
      case CREATE -> "create_revision";
      case MOD -> "mod_revision";
      case VALUE -> "value";
    };
    SortOrder o = r.sortOrder() == null ? SortOrder.NONE : r.sortOrder();
    if (o == SortOrder.NONE) {
      o = SortOrder.ASCEND;
    }
    String dir = o == SortOrder.DESCEND ? " DESC" : "";
    return column.equals("key") ? "@key" + dir : "@" + column + dir + ", @key";
  }
}
