package org.dbos.kernel;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Function;

/**
 * The transaction a system call runs in. Everything done through it commits or rolls back together
 * with the call's audit record. Statements are prepared on the connection, so pgjdbc's statement
 * cache turns repeated SQL into server-side prepared statements.
 */
public final class Tx {
  /** Maps the current row of a result set to a value. */
  @FunctionalInterface
  public interface Row<T> {
    T map(ResultSet rs) throws SQLException;
  }

  private final Connection connection;
  private final Session session;
  private final UUID callId;
  private List<Runnable> afterCommit;
  private List<String> notifyAfterCommit;
  private boolean commitWithoutFlush;
  private Last<?> last;

  public Tx(Connection connection, Session session, UUID callId) {
    this.connection = connection;
    this.session = session;
    this.callId = callId;
  }

  public Connection connection() {
    return connection;
  }

  /** The caller. */
  public Session session() {
    return session;
  }

  /** The id of this call's audit record. */
  public UUID callId() {
    return callId;
  }

  public int update(String sql, Object... args) throws SQLException {
    try (PreparedStatement ps = prepare(sql, args)) {
      return ps.executeUpdate();
    }
  }

  public <T> List<T> query(String sql, Row<T> row, Object... args) throws SQLException {
    try (PreparedStatement ps = prepare(sql, args); ResultSet rs = ps.executeQuery()) {
      var out = new ArrayList<T>();
      while (rs.next()) {
        out.add(row.map(rs));
      }
      return out;
    }
  }

  public <T> Optional<T> queryOne(String sql, Row<T> row, Object... args) throws SQLException {
    try (PreparedStatement ps = prepare(sql, args); ResultSet rs = ps.executeQuery()) {
      return rs.next() ? Optional.ofNullable(row.map(rs)) : Optional.empty();
    }
  }

  public long queryLong(String sql, Object... args) throws SQLException {
    return queryOne(sql, rs -> rs.getLong(1), args).orElseThrow(() -> new SQLException("no row: " + sql));
  }

  /** Sends a NOTIFY that PostgreSQL delivers only if this transaction commits. */
  public void notify(String channel, String payload) throws SQLException {
    try (PreparedStatement ps = prepare("SELECT pg_notify(?, ?)", channel, payload)) {
      ps.execute();
    }
  }

  /**
   * Sends a NOTIFY just after this system call's COMMIT, in the same round trip, if it committed. A
   * NOTIFY inside a transaction holds PostgreSQL's notify queue lock across that transaction's WAL
   * flush, so notifying commits never share a flush; this one is a transaction of its own with
   * nothing to flush. Lost with the connection if that drops right after the commit: for wake-ups
   * that have a fallback. Only system calls ({@link Kernel#call}) send these.
   */
  public void notifyAfterCommit(String channel, String payload) {
    if (notifyAfterCommit == null) {
      notifyAfterCommit = new ArrayList<>(2);
    }
    notifyAfterCommit.add(channel);
    notifyAfterCommit.add(payload);
  }

  /** Channel and payload, alternating, of the {@link #notifyAfterCommit} calls. */
  List<String> notificationsAfterCommit() {
    return notifyAfterCommit == null ? List.of() : notifyAfterCommit;
  }

  /**
   * Commits this call without waiting for the WAL flush (set with the COMMIT, so it costs no round
   * trip): atomic and ordered, durable once a later durable commit returns.
   */
  public void commitWithoutFlush() {
    commitWithoutFlush = true;
  }

  boolean commitsWithoutFlush() {
    return commitWithoutFlush;
  }

  /**
   * Makes {@code sql} the call's last statement, sent in one round trip with the audit row and the
   * COMMIT: a round trip fewer than running it in the body, which must send nothing after it. If
   * {@code row} is not null, the call returns what it makes of the statement's first row (null when
   * there is none) instead of the body's value. If the statement fails, the call rolls back and fails
   * with what {@code failure} (may be null) makes of the error: a service's own error raised in SQL;
   * other errors (null) fail the call as in the body.
   */
  public <T> void last(String sql, Row<T> row, Function<SQLException, SyscallException> failure, Object... args) {
    last = new Last<>(sql, args, row, failure, false, false);
  }

  /**
   * {@link #last} for a statement of many rows: the call returns what {@code result} makes of its whole
   * result set ({@code result} calls {@code next} itself).
   */
  public <T> void lastResult(String sql, Row<T> result, Object... args) {
    last = new Last<>(sql, args, result, null, false, true);
  }

  /**
   * {@link #last} for a statement made by {@link org.dbos.kernel.security.AuditLog#audited}, which
   * checks the call and appends its audit row itself: one statement fewer per call (each costs
   * PostgreSQL its own bind, snapshot and executor start). {@code args} are the statement's own, after
   * the audit row's.
   */
  public <T> void lastAudited(String sql, Row<T> row, Function<SQLException, SyscallException> failure, Object... args) {
    last = new Last<>(sql, args, row, failure, true, false);
  }

  /**
   * A body's last statement (see {@link #last}); {@code audits}: see {@link #lastAudited}; {@code
   * wholeResult}: {@code row} reads the whole result set (see {@link #lastResult}).
   */
  public record Last<T>(String sql, Object[] args, Row<T> row, Function<SQLException, SyscallException> failure,
                        boolean audits, boolean wholeResult) {}

  Last<?> lastStatement() {
    return last;
  }

  /** Runs {@code action} after the commit succeeded (never if the call fails): wake-ups, cache updates. */
  public void afterCommit(Runnable action) {
    if (afterCommit == null) {
      afterCommit = new ArrayList<>(2);
    }
    afterCommit.add(action);
  }

  void runAfterCommit() {
    if (afterCommit != null) {
      afterCommit.forEach(Runnable::run);
    }
  }

  public PreparedStatement prepare(String sql, Object... args) throws SQLException {
    PreparedStatement ps = connection.prepareStatement(sql);
    bind(ps, args);
    return ps;
  }

  public static void bind(PreparedStatement ps, Object... args) throws SQLException {
    bindFrom(ps, 1, args);
  }

  /** Binds {@code args} as the parameters from {@code from} on. */
  public static void bindFrom(PreparedStatement ps, int from, Object... args) throws SQLException {
    for (int i = 0; i < args.length; i++) {
      Object a = args[i];
      if (a instanceof Instant t) {
        ps.setObject(from + i, OffsetDateTime.ofInstant(t, ZoneOffset.UTC));
      } else if (a instanceof byte[] b) {
        ps.setBytes(from + i, b);
      } else {
        ps.setObject(from + i, a);
      }
    }
  }
}
