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
 * the append are a single statement, so an allowed call costs one round trip before its work.
 */
public final class AuditLog {
  /** What a check-and-append decided. */
  public enum Verdict {
    ALLOWED, DENIED, INVALID_SESSION
  }

  /**
   * Checks that the session is open and its principal enabled, then (if {@code right} is non-null) that
   * the principal is an admin or holds {@code right} on a prefix of {@code object}; appends the audit
   * row with outcome {@code ok} or {@code denied} either way, and returns the verdict.
   */
  private static final String CHECK_AND_APPEND = """
      INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome, detail)
      SELECT v.id, v.principal_id, v.session_id, v.node_id, v.task_id, v.call, v.object,
             CASE WHEN s.ok AND r.ok THEN 'ok' ELSE 'denied' END,
             CASE WHEN NOT s.ok THEN 'invalid session' WHEN NOT r.ok THEN 'missing right ' || v.right_name END
      FROM (VALUES (?::uuid, ?::bigint, ?::uuid, ?::uuid, ?::text, ?::text, ?::text, ?::text))
             AS v(id, principal_id, session_id, node_id, task_id, call, object, right_name)
      CROSS JOIN LATERAL (SELECT EXISTS (
             SELECT 1 FROM sessions s JOIN principals p ON p.id = s.principal_id
             WHERE s.id = v.session_id AND s.principal_id = v.principal_id AND s.closed_at IS NULL
               AND s.expires_at > now() AND NOT p.disabled) AS ok) s
      CROSS JOIN LATERAL (SELECT v.right_name IS NULL
             OR EXISTS (SELECT 1 FROM principals p WHERE p.id = v.principal_id AND p.is_admin)
             OR EXISTS (SELECT 1 FROM grants g WHERE g.principal_id = v.principal_id
                          AND g.right_name = v.right_name AND starts_with(v.object, g.object_prefix)) AS ok) r
      RETURNING outcome, detail
      """;

  private static final String APPEND = """
      INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome, detail)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO NOTHING
      """;

  private static final String COMMITTED = "SELECT outcome FROM audit_log WHERE id = ?";

  private AuditLog() {}

  public static Verdict checkAndAppend(Connection c, UUID id, Session s, String call, String object, Right right)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(CHECK_AND_APPEND)) {
      ps.setObject(1, id);
      ps.setLong(2, s.principalId());
      ps.setObject(3, s.id());
      ps.setObject(4, s.nodeId());
      ps.setString(5, s.taskId());
      ps.setString(6, call);
      ps.setString(7, object);
      ps.setString(8, right == null ? null : right.name());
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        if (rs.getString(1).equals("ok")) {
          return Verdict.ALLOWED;
        }
        return "invalid session".equals(rs.getString(2)) ? Verdict.INVALID_SESSION : Verdict.DENIED;
      }
    }
  }

  /** Appends a record without a check: for failed calls (after their rollback) and kernel events. */
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
