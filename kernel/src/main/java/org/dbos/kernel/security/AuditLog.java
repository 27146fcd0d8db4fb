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
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.Tx;
import org.dbos.kernel.db.Database;

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
   * The kernel's rule for one call row {@code v}: 'ok', 'missing right …' or 'invalid session'. A
   * scalar subquery over the one session row (open and unexpired: disabling a principal closes its
   * sessions, so an open session is an enabled principal's), which carries its principal's grants and
   * its roles' as LIKE patterns (see V2__session_rights.sql): one index probe.
   */
  private static final String VERDICT = """
      COALESCE((SELECT CASE WHEN s.is_admin OR v.right_name IS NULL
                              OR v.right_name || ' ' || v.object LIKE ANY (s.right_patterns) THEN 'ok'
                            ELSE 'missing right ' || v.right_name END
                FROM sessions s
                WHERE s.id = v.session_id AND s.principal_id = v.principal_id AND s.closed_at IS NULL
                  AND s.expires_at > now()), 'invalid session')""";

  /** One call as the row {@code v} (bound by {@link #bindCall}). */
  private static final String CALL = """
      FROM (VALUES (?::uuid, ?::bigint, ?::uuid, ?::uuid, ?::text, ?::text, ?::text, ?::text))
             AS v(id, principal_id, session_id, node_id, task_id, call, object, right_name)""";

  /** Many calls as rows {@code v} (one array per column, bound by {@link #bindCalls}), in order. */
  private static final String CALLS = """
      FROM unnest(?::uuid[], ?::bigint[], ?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::text[], ?::text[])
             WITH ORDINALITY AS v(id, principal_id, session_id, node_id, task_id, call, object, right_name, n)""";

  /**
   * Checks the calls of {@code %s} ({@link #CALL} or {@link #CALLS}) and appends their 'ok' records; a
   * refused check raises {@link #DENIED_STATE} instead, which aborts the transaction.
   */
  private static final String CHECKED_APPEND = """
      INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome)
      SELECT id, principal_id, session_id, node_id, task_id, call, object,
             CASE WHEN verdict = 'ok' THEN 'ok' ELSE deny(verdict) END
      FROM (SELECT v.*, %s AS verdict %s) AS checked""";

  private static final String APPEND_CHECKED = CHECKED_APPEND.formatted(VERDICT, CALL);

  /** The COMMIT after a statement made by {@link #audited}, and the same without waiting for the WAL flush. */
  private static final String COMMIT = "COMMIT";
  private static final String COMMIT_ASYNC = "SET LOCAL synchronous_commit = off;\nCOMMIT";

  private static final java.util.regex.Pattern WITH = java.util.regex.Pattern.compile("^WITH( RECURSIVE)?\\s");

  /**
   * {@code statement}, one WITH statement, with the call's check and append as its first CTE, for
   * {@link org.dbos.kernel.Tx#lastAudited}: the append's eight parameters come first. A data-modifying
   * CTE runs whether or not the statement reads it, after the statement's own work (so a service's own
   * error in it comes first, as when the append is a statement of its own).
   */
  public static String audited(String statement) {
    var m = WITH.matcher(statement);
    if (!m.find()) {
      throw new IllegalArgumentException("not a WITH statement: " + statement);
    }
    return statement.substring(0, m.end()) + "audited AS (" + APPEND_CHECKED + "),\n" + statement.substring(m.end());
  }

  /** Appends the 'ok' record of a call that did its work and commits, in one round trip. */
  private static final String COMMIT_CHECKED = APPEND_CHECKED + ";\n" + COMMIT;

  /** The same, committing without waiting for the WAL flush. */
  private static final String COMMIT_CHECKED_ASYNC = APPEND_CHECKED + ";\n" + COMMIT_ASYNC;

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
      SELECT verdict FROM checked""".formatted(VERDICT, CALL);

  /** The verdicts of many calls, in order, without appending (see {@link #checkAll}). */
  private static final String CHECK_ALL = "SELECT " + VERDICT + "\n" + CALLS + "\nORDER BY v.n";

  /**
   * For a service that runs a batch of calls in one statement of its own: a data-modifying CTE body
   * ({@code WITH audited AS (…)}) that checks every call bound by {@link #bindCalls} as {@link
   * #commitChecked} does and appends their 'ok' records, raising {@link #DENIED_STATE} if any is refused.
   */
  public static final String CHECKED_APPEND_ALL = CHECKED_APPEND.formatted(VERDICT, CALLS);

  /**
   * For a service that checked a batch with {@link #checkAll}: a data-modifying CTE body that appends
   * the calls bound by {@link #bindCalls} with the outcomes and details bound by {@link #bindOutcomes}.
   */
  public static final String APPEND_ALL = """
      INSERT INTO audit_log (id, principal_id, session_id, node_id, task_id, call, object, outcome, detail)
      SELECT v.id, v.principal_id, v.session_id, v.node_id, v.task_id, v.call, v.object, o.outcome, o.detail
      %s
      JOIN unnest(?::text[], ?::text[]) WITH ORDINALITY AS o(outcome, detail, n) ON o.n = v.n""".formatted(CALLS);

  /** One call of a batch that a service checks and audits in its own transaction. */
  public record Call(UUID id, Session session, String call, String object, Right right) {}

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
    commitChecked(c, null, id, s, call, object, right, durable, notifications);
  }

  /**
   * Like {@link #commitChecked} with the call's own last statement {@code last} (may be null) sent
   * first, in the same round trip; returns what its row mapper makes of the first row of its first result
   * set (null if none), or of that whole result set if {@link Tx.Last#wholeResult}.
   */
  public static <T> T commitChecked(Connection c, Tx.Last<T> last, UUID id, Session s, String call, String object,
                                    Right right, boolean durable, List<String> notifications) throws SQLException {
    boolean audits = last != null && last.audits();
    String commit = audits ? (durable ? COMMIT : COMMIT_ASYNC) : durable ? COMMIT_CHECKED : COMMIT_CHECKED_ASYNC;
    String sql = notifications.isEmpty() ? commit : commit + ";\nSELECT pg_notify(?, ?)".repeat(notifications.size() / 2);
    if (last != null) {
      sql = last.sql() + ";\n" + sql;
    }
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      int next = 1;
      if (audits) {
        bindCall(ps, 1, id, s, call, object, right);
        Tx.bindFrom(ps, 9, last.args());
        next = 9 + last.args().length;
      } else {
        if (last != null) {
          Tx.bind(ps, last.args());
          next += last.args().length;
        }
        bindCall(ps, next, id, s, call, object, right);
        next += 8;
      }
      for (int i = 0; i < notifications.size(); i++) {
        ps.setString(next + i, notifications.get(i));
      }
      boolean rows = ps.execute();
      if (last == null || last.row() == null) {
        return null;
      }
      while (!rows && ps.getUpdateCount() != -1) { // the last statement may be several: its first result set
        rows = ps.getMoreResults();
      }
      if (!rows) {
        return null;
      }
      try (ResultSet rs = ps.getResultSet()) {
        return last.wholeResult() ? last.row().map(rs) : rs.next() ? last.row().map(rs) : null;
      }
    }
  }

  /**
   * Like {@link #commitChecked} for a call whose body sent nothing to the database: on a connection in
   * autocommit mode the checked append is the whole transaction, and one statement.
   */
  public static void appendChecked(Connection c, UUID id, Session s, String call, String object, Right right)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(APPEND_CHECKED)) {
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

  /** Binds one call's row {@link #CALL} from {@code from} (8 parameters). */
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
   * Checks many calls at once, in the caller's transaction, by the rule of {@link #commitChecked}:
   * one verdict per call, in order. Appends nothing: the service appends the records with their
   * outcomes by {@link #APPEND_ALL}.
   */
  public static Verdict[] checkAll(Connection c, List<Call> calls) throws SQLException {
    var out = new Verdict[calls.size()];
    try (PreparedStatement ps = c.prepareStatement(CHECK_ALL)) {
      bindCalls(c, ps, 1, calls);
      try (ResultSet rs = ps.executeQuery()) {
        for (int i = 0; rs.next(); i++) {
          String v = rs.getString(1);
          out[i] = v.equals("ok") ? Verdict.ALLOWED : v.equals("invalid session") ? Verdict.INVALID_SESSION
              : Verdict.DENIED;
        }
      }
    }
    return out;
  }

  /** Binds {@code calls} as the eight arrays {@link #CHECKED_APPEND_ALL} and {@link #APPEND_ALL} read; returns the next index. */
  public static int bindCalls(Connection c, PreparedStatement ps, int from, List<Call> calls) throws SQLException {
    int n = calls.size();
    var ids = new UUID[n];
    var principals = new Long[n];
    var sessions = new UUID[n];
    var nodes = new UUID[n];
    var tasks = new String[n];
    var names = new String[n];
    var objects = new String[n];
    var rights = new String[n];
    for (int i = 0; i < n; i++) {
      Call k = calls.get(i);
      ids[i] = k.id();
      principals[i] = k.session().principalId();
      sessions[i] = k.session().id();
      nodes[i] = k.session().nodeId();
      tasks[i] = k.session().taskId();
      names[i] = k.call();
      objects[i] = k.object();
      rights[i] = k.right() == null ? null : k.right().name();
    }
    ps.setArray(from, c.createArrayOf("uuid", ids));
    ps.setArray(from + 1, c.createArrayOf("bigint", principals));
    ps.setArray(from + 2, c.createArrayOf("uuid", sessions));
    ps.setArray(from + 3, c.createArrayOf("uuid", nodes));
    ps.setArray(from + 4, c.createArrayOf("text", tasks));
    ps.setArray(from + 5, c.createArrayOf("text", names));
    ps.setArray(from + 6, c.createArrayOf("text", objects));
    ps.setArray(from + 7, c.createArrayOf("text", rights));
    return from + 8;
  }

  /** Binds the outcomes ('ok', 'denied', 'error') and details {@link #APPEND_ALL} reads after the calls. */
  public static int bindOutcomes(Connection c, PreparedStatement ps, int from, String[] outcomes, String[] details)
      throws SQLException {
    var d = new String[details.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = details[i] == null || details[i].length() <= 1000 ? details[i] : details[i].substring(0, 1000);
    }
    ps.setArray(from, c.createArrayOf("text", outcomes));
    ps.setArray(from + 1, c.createArrayOf("text", d));
    return from + 2;
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

  /**
   * After a COMMIT whose reply was lost: whether the call with this audit id committed, asked until
   * the database answers; UNAVAILABLE if it does not within {@link Database#MAX_ATTEMPTS} tries.
   */
  public static boolean committedAfterLoss(Database db, UUID id) {
    for (int attempt = 1; ; attempt++) {
      try (Connection c = db.connection()) {
        return committed(c, id);
      } catch (SQLException e) {
        if (attempt >= Database.MAX_ATTEMPTS) {
          throw new SyscallException(SyscallException.Code.UNAVAILABLE,
              "lost the database while committing; the call may or may not have been applied (audit id " + id + ")", e);
        }
        Database.backoff(attempt);
      }
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
