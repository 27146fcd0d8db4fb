package org.dbos.kernel.security;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
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

  /** The verdict of the session and right checks, as 'ok' or the reason for refusing. */
  private static final String VERDICT = """
      CASE WHEN sp.is_admin IS NULL THEN 'invalid session'
           WHEN v.right_name IS NULL OR sp.is_admin
             OR EXISTS (SELECT 1 FROM grants g WHERE g.principal_id = v.principal_id
                          AND g.right_name = v.right_name AND starts_with(v.object, g.object_prefix))
           THEN 'ok'
           ELSE 'missing right ' || v.right_name END""";

  /**
   * The call's values, joined with its session if that is open and unexpired (disabling a principal
   * closes its sessions, so an open session is an enabled principal's).
   */
  private static final String VALUES = """
      FROM (VALUES (?::uuid, ?::bigint, ?::uuid, ?::uuid, ?::text, ?::text, ?::text, ?::text))
             AS v(id, principal_id, session_id, node_id, task_id, call, object, right_name)
      LEFT JOIN LATERAL (
             SELECT s.is_admin FROM sessions s
             WHERE s.id = v.session_id AND s.principal_id = v.principal_id AND s.closed_at IS NULL
               AND s.expires_at > now()) AS sp ON true""";

  /**
   * Appends the 'ok' record of a call that did its work, and commits, in one round trip; a refused
   * check raises {@link #DENIED_STATE} instead, which aborts the transaction and skips the COMMIT.
   */
  private static final String COMMIT_CHECKED = """
      INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome)
      SELECT id, principal_id, session_id, node_id, task_id, call, object,
             CASE WHEN verdict = 'ok' THEN 'ok' ELSE deny(verdict) END
      FROM (SELECT v.*, %s AS verdict %s) AS checked;
      COMMIT""".formatted(VERDICT, VALUES);

  /** The same for a call that does not wait for its WAL flush: the setting is read at COMMIT. */
  private static final String COMMIT_CHECKED_UNFLUSHED = COMMIT_CHECKED.substring(0, COMMIT_CHECKED.lastIndexOf("COMMIT"))
      + "SET LOCAL synchronous_commit = off;\n      COMMIT";

  /**
   * Records a failed call after its rollback: 'denied' if the checks refuse it, else the outcome the
   * body's failure implies ('denied' for a service's own refusal, 'error' otherwise).
   */
  private static final String RECORD_FAILURE = """
      WITH checked AS (SELECT v.*, %s AS verdict %s),
           recorded AS (
             INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome, detail)
             SELECT id, principal_id, session_id, node_id, task_id, call, object,
                    CASE WHEN verdict = 'ok' THEN ?::text ELSE 'denied' END,
                    CASE WHEN verdict = 'ok' THEN ?::text ELSE verdict END
             FROM checked
             ON CONFLICT (id) DO NOTHING)
      SELECT verdict FROM checked""".formatted(VERDICT, VALUES);

  /** Checks and appends without raising: the record says 'ok' or 'denied' (for batched front ends). */
  private static final String CHECK_AND_APPEND = """
      INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome, detail)
      SELECT id, principal_id, session_id, node_id, task_id, call, object,
             CASE WHEN verdict = 'ok' THEN 'ok' ELSE 'denied' END, NULLIF(verdict, 'ok')
      FROM (SELECT v.*, %s AS verdict %s) AS checked
      RETURNING outcome, detail""".formatted(VERDICT, VALUES);

  private static final String APPEND = """
      INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome, detail)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO NOTHING""";

  private static final String COMMITTED = "SELECT outcome FROM audit_log WHERE id = ?";

  private AuditLog() {}

  /**
   * Checks {@code s} (open, unexpired, principal enabled) and, if {@code right} is non-null, that its
   * principal is an admin or holds {@code right} on a prefix of {@code object}; then appends the
   * 'ok' record and COMMITs the connection's transaction ({@code withoutFlush}: without waiting for
   * the WAL flush). Throws an SQLException with state
   * {@link #DENIED_STATE} (transaction aborted, nothing committed) if a check fails.
   */
  public static void commitChecked(Connection c, UUID id, Session s, String call, String object, Right right,
                                   boolean withoutFlush) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(withoutFlush ? COMMIT_CHECKED_UNFLUSHED : COMMIT_CHECKED)) {
      bindCall(ps, 1, id, s, call, object, right);
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
      bindCall(ps, 1, id, s, call, object, right);
      ps.setString(9, outcome);
      ps.setString(10, detail == null ? null : detail.length() > 1000 ? detail.substring(0, 1000) : detail);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        String verdict = rs.getString(1);
        return verdict.equals("ok") ? null : verdict;
      }
    }
  }

  private static void bindCall(PreparedStatement ps, int from, UUID id, Session s, String call, String object,
                               Right right) throws SQLException {
    ps.setObject(from, id);
    ps.setLong(from + 1, s.principalId());
    ps.setObject(from + 2, s.id());
    ps.setObject(from + 3, s.nodeId());
    ps.setString(from + 4, s.taskId());
    ps.setString(from + 5, call);
    ps.setString(from + 6, object);
    ps.setString(from + 7, right == null ? null : right.name());
  }

  /**
   * For front ends that run many calls in one transaction (batched writes): checks like
   * {@link #commitChecked} and appends the record with outcome 'ok' or 'denied', without raising and
   * without committing.
   */
  public static Verdict checkAndAppend(Connection c, UUID id, Session s, String call, String object, Right right)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(CHECK_AND_APPEND)) {
      bindCall(ps, 1, id, s, call, object, right);
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
