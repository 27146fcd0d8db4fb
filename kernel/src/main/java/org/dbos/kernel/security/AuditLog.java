package org.dbos.kernel.security;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.util.List;
import java.util.UUID;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;

/**
 * The audit log: one row per system call, written in the call's own transaction. The rights check and
 * the append are one statement, sent together with the COMMIT: a call costs the round trips of its
 * own work plus one.
 */
public final class AuditLog {
  /** What a check-and-append decided. */
  public enum Verdict {
    ALLOWED, DENIED, INVALID_SESSION
  }

  /** SQLSTATE raised by {@link #COMMIT_CHECKED} when the session is invalid or the right is missing. */
  public static final String DENIED_STATE = "DBOSD";

  /**
   * The session and right check, as a scalar subquery over the one session row: 'ok', or what the
   * ELSE branch ({@code %s}) makes of the refusal; NULL when the session is not open and unexpired
   * (disabling a principal closes its sessions, so an open session is an enabled principal's). The
   * session carries its principal's grants as LIKE patterns (see V2__session_rights.sql). Parameters:
   * wanted, wanted, refusal, session id, principal id (see {@link #bindCheck}).
   */
  private static final String CHECK = """
      (SELECT CASE WHEN s.is_admin OR ?::text IS NULL OR ?::text LIKE ANY (s.right_patterns) THEN 'ok'
                   ELSE %s END
       FROM sessions s
       WHERE s.id = ?::uuid AND s.principal_id = ?::bigint AND s.closed_at IS NULL AND s.expires_at > now())""";

  private static final String VERDICT = "COALESCE(" + CHECK.formatted("?::text") + ", 'invalid session')";

  private static final String RECORD = "?::uuid, ?::bigint, ?::uuid, ?::uuid, ?::text, ?::text, ?::text";

  /**
   * Appends the 'ok' record of a call that did its work, and commits, in one round trip; a refused
   * check raises {@link #DENIED_STATE} instead, which aborts the transaction and skips the COMMIT.
   */
  private static final String APPEND_CHECKED = """
      INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome)
      VALUES (%s, COALESCE(%s, deny('invalid session')))""".formatted(RECORD, CHECK.formatted("deny(?::text)"));

  private static final String COMMIT_CHECKED = APPEND_CHECKED + ";\nCOMMIT";

  /** The same, committing without waiting for the WAL flush. */
  private static final String COMMIT_CHECKED_ASYNC = APPEND_CHECKED + ";\nSET LOCAL synchronous_commit = off;\nCOMMIT";

  /**
   * Records a failed call after its rollback: 'denied' if the checks refuse it, else the outcome the
   * body's failure implies ('denied' for a service's own refusal, 'error' otherwise).
   */
  private static final String RECORD_FAILURE = """
      WITH checked AS (SELECT %s AS verdict),
           recorded AS (
             INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome, detail)
             SELECT %s,
                    CASE WHEN verdict = 'ok' THEN ?::text ELSE 'denied' END,
                    CASE WHEN verdict = 'ok' THEN ?::text ELSE verdict END
             FROM checked
             ON CONFLICT (id) DO NOTHING)
      SELECT verdict FROM checked""".formatted(VERDICT, RECORD);

  /** Checks and appends without raising: the record says 'ok' or 'denied' (for batched front ends). */
  private static final String CHECK_AND_APPEND = """
      INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome, detail)
      SELECT %s, CASE WHEN verdict = 'ok' THEN 'ok' ELSE 'denied' END, NULLIF(verdict, 'ok')
      FROM (SELECT %s AS verdict) AS checked
      RETURNING outcome, detail""".formatted(RECORD, VERDICT);

  private static final String APPEND = """
      INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome, detail)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO NOTHING""";

  private static final String COMMITTED = "SELECT outcome FROM audit_log WHERE id = ?";

  private AuditLog() {}

  /**
   * Checks {@code s} (open, unexpired, principal enabled) and, if {@code right} is non-null, that its
   * principal is an admin or holds {@code right} on a prefix of {@code object}; then appends the
   * 'ok' record and COMMITs the connection's transaction, waiting for the WAL flush if {@code durable}
   * (else a crash may lose the last fraction of a second of such commits: for calls that change
   * nothing but the audit log); then, in the same round trip, sends the NOTIFYs in {@code
   * notifications} (channel and payload, alternating), each outside the committed transaction.
   * Throws an SQLException with state {@link #DENIED_STATE} (transaction aborted, nothing committed
   * or notified) if a check fails.
   */
  public static void commitChecked(Connection c, UUID id, Session s, String call, String object, Right right,
                                   boolean durable, List<String> notifications) throws SQLException {
    String commit = durable ? COMMIT_CHECKED : COMMIT_CHECKED_ASYNC;
    String sql = notifications.isEmpty() ? commit : commit + ";\nSELECT pg_notify(?, ?)".repeat(notifications.size() / 2);
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      int next = bindCheck(ps, bindRecord(ps, 1, id, s, call, object), s, object, right);
      for (int i = 0; i < notifications.size(); i++) {
        ps.setString(next + i, notifications.get(i));
      }
      ps.execute();
    }
  }

  /**
   * Like {@link #commitChecked} for a call whose body sent nothing to the database: on a connection in
   * autocommit mode the checked append is the whole transaction, and one statement.
   */
  public static void appendChecked(Connection c, UUID id, Session s, String call, String object, Right right)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(APPEND_CHECKED)) {
      bindCheck(ps, bindRecord(ps, 1, id, s, call, object), s, object, right);
      ps.execute();
    }
  }

  /**
   * Records a call that failed (its transaction already rolled back) and returns the reason it was
   * refused, or null if the checks pass and the failure was the call's own (recorded as
   * {@code outcome}, 'denied' or 'error', with {@code detail}).
   */
  public static String recordFailure(Connection c, UUID id, Session s, String call, String object, Right right,
                                     String outcome, String detail) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(RECORD_FAILURE)) {
      int next = bindRecord(ps, bindCheck(ps, 1, s, object, right), id, s, call, object);
      ps.setString(next, outcome);
      ps.setString(next + 1, detail == null ? null : detail.length() > 1000 ? detail.substring(0, 1000) : detail);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        String verdict = rs.getString(1);
        return verdict.equals("ok") ? null : verdict;
      }
    }
  }

  /** Binds the record's columns id … object from {@code from}; returns the next parameter index. */
  private static int bindRecord(PreparedStatement ps, int from, UUID id, Session s, String call, String object)
      throws SQLException {
    ps.setObject(from, id);
    ps.setLong(from + 1, s.principalId());
    ps.setObject(from + 2, s.id());
    ps.setObject(from + 3, s.nodeId());
    ps.setString(from + 4, s.taskId());
    ps.setString(from + 5, call);
    ps.setString(from + 6, object);
    return from + 7;
  }

  /** Binds {@link #CHECK}'s parameters from {@code from}; returns the next parameter index. */
  private static int bindCheck(PreparedStatement ps, int from, Session s, String object, Right right)
      throws SQLException {
    String wanted = right == null ? null : right.name() + ' ' + object;
    ps.setString(from, wanted);
    ps.setString(from + 1, wanted);
    ps.setString(from + 2, right == null ? null : "missing right " + right.name());
    ps.setObject(from + 3, s.id());
    ps.setLong(from + 4, s.principalId());
    return from + 5;
  }

  /**
   * For front ends that run many calls in one transaction (batched writes): checks like
   * {@link #commitChecked} and appends the record with outcome 'ok' or 'denied', without raising and
   * without committing.
   */
  public static Verdict checkAndAppend(Connection c, UUID id, Session s, String call, String object, Right right)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(CHECK_AND_APPEND)) {
      bindCheck(ps, bindRecord(ps, 1, id, s, call, object), s, object, right);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        if (rs.getString(1).equals("ok")) {
          return Verdict.ALLOWED;
        }
        return "invalid session".equals(rs.getString(2)) ? Verdict.INVALID_SESSION : Verdict.DENIED;
      }
    }
  }

  /** Appends a record without a check: kernel events (node deaths, logins) and batched front ends. */
  public static void append(Connection c, UUID id, Session s, String call, String object, String outcome,
                            String detail) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(APPEND)) {
      ps.setObject(1, id);
      if (s == null) {
        ps.setNull(2, Types.BIGINT);
        ps.setNull(3, Types.OTHER);
        ps.setNull(4, Types.OTHER);
        ps.setNull(5, Types.VARCHAR);
      } else {
        ps.setLong(2, s.principalId());
        ps.setObject(3, s.id());
        ps.setObject(4, s.nodeId());
        ps.setString(5, s.taskId());
      }
      ps.setString(6, call);
      ps.setString(7, object);
      ps.setString(8, outcome);
      ps.setString(9, detail == null ? null : detail.length() > 1000 ? detail.substring(0, 1000) : detail);
      ps.executeUpdate();
    }
  }

  /** Whether the call with this audit id committed: how a call whose COMMIT was lost learns its fate. */
  public static boolean committed(Connection c, UUID id) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(COMMITTED)) {
      ps.setObject(1, id);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next();
      }
    }
  }
}
