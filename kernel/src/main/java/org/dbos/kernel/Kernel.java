package org.dbos.kernel;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.dbos.kernel.db.Database;
import org.dbos.kernel.security.AuditLog;
import org.dbos.kernel.security.Principal;
import org.dbos.kernel.security.Principals;
import org.postgresql.core.BaseConnection;
import org.postgresql.core.TransactionState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The kernel: sessions and system calls over the OS database. Every service (files, scheduler,
 * messages, key-value) is built from {@link #call} and {@link #callChecked}: one database
 * transaction that checks the caller's right, does the work and appends one audit record, all or
 * nothing.
 *
 * <p>A kernel is either a <em>node</em> ({@link Node} boots one: embedded database, migrations,
 * membership) or a <em>client</em> ({@link #connect}: the CLI talking straight to the database).
 */
public final class Kernel implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Kernel.class);
  /** How long a password login lasts. Front-end sessions opened by a node last until it closes them. */
  public static final Duration LOGIN_TTL = Duration.ofHours(12);
  public static final String SYSTEM = "system";
  public static final String ADMIN = "admin";

  /** The body of a system call. */
  @FunctionalInterface
  public interface Body<T> {
    T run(Tx tx) throws SQLException;
  }

  private final Database db;
  private final UUID nodeId;
  private final MeterRegistry meters;
  private final Principals principals;
  private final ConcurrentHashMap<String, Counter> counters = new ConcurrentHashMap<>();
  private final List<AutoCloseable> closeables = new ArrayList<>();
  private volatile Session system;

  Kernel(Database db, UUID nodeId, MeterRegistry meters) {
    this.db = db;
    this.nodeId = nodeId;
    this.meters = meters;
    this.principals = new Principals(this);
  }

  /** A client kernel on an already migrated database: no node, no embedded server. */
  public static Kernel connect(String url, String user, String password) {
    var meters = new SimpleMeterRegistry();
    var db = Database.connect(url, user, password, 4, meters);
    try (Connection c = db.connection()) {
      var rs = c.createStatement().executeQuery("SELECT to_regclass('dbos.audit_log') IS NOT NULL");
      rs.next();
      if (!rs.getBoolean(1)) {
        db.close();
        throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION,
            "the database at " + Database.redact(url) + " has no DBOS schema: start a node on it with `dbos up --db`");
      }
    } catch (SQLException e) {
      db.close();
      throw Database.translate(e);
    }
    return new Kernel(db, null, meters);
  }

  public Database database() {
    return db;
  }

  /** This node's id, or empty for a client kernel. */
  public Optional<UUID> nodeId() {
    return Optional.ofNullable(nodeId);
  }

  public MeterRegistry meters() {
    return meters;
  }

  public Principals principals() {
    return principals;
  }

  /** Closes {@code c} when the kernel closes, in reverse order of registration (services, front ends). */
  public synchronized void onClose(AutoCloseable c) {
    closeables.add(c);
  }

  // ---- sessions ----------------------------------------------------------------------------

  /**
   * Authenticates {@code name} with {@code secret} and opens a session for {@link #LOGIN_TTL}. A wrong
   * secret, an unknown or disabled principal all fail alike with PERMISSION_DENIED (and are audited).
   */
  public Session login(String name, String secret) {
    Principals.Login attempt = principals.authenticate(name, secret);
    Optional<Principal> p = attempt.principal();
    if (!attempt.ok()) {
      UUID id = Ids.uuid7();
      db.transaction(c -> {
        Session who = p.map(pr -> pr.session(null, nodeId, null)).orElse(null);
        AuditLog.append(c, id, who, "session.login", "principal:" + name, "denied", "authentication failed");
        return null;
      });
      throw SyscallException.denied("authentication failed for principal '" + name + "'");
    }
    return open(p.get(), LOGIN_TTL, "session.login");
  }

  /**
   * Opens a session for {@code name} without a secret. For front ends in this process that have
   * authenticated the caller themselves (a FUSE request's uid, an etcd token) and for the kernel's
   * own work. Fails with NOT_FOUND for an unknown principal, PERMISSION_DENIED for a disabled one.
   */
  public Session openSession(String name, Duration ttl) {
    Principal p = db.transaction(c -> principals.lookup(c, name))
        .orElseThrow(() -> SyscallException.notFound("no principal named '" + name + "'"));
    if (p.disabled()) {
      throw SyscallException.denied("principal '" + name + "' is disabled");
    }
    return open(p, ttl, "session.open");
  }

  /** The principal and its roles, share-locked; the principal's row is the one with {@code id = ?}. */
  private static final String LOCK_PRINCIPAL_AND_ROLES = """
      SELECT id, disabled FROM principals
      WHERE id = ? OR id IN (SELECT role_id FROM principal_roles WHERE principal_id = ?) FOR SHARE""";
  private static final String INSERT_SESSION = """
      INSERT INTO sessions (id, principal_id, is_admin, node_id, expires_at, right_patterns)
      SELECT ?, id, is_admin, ?, now() + ?::interval, right_patterns(id) FROM principals WHERE id = ?""";

  private Session open(Principal p, Duration ttl, String call) {
    UUID sid = UUID.randomUUID();
    Session s = p.session(sid, nodeId, null);
    db.transaction(c -> {
      // The share locks wait for a grant, revoke, role change or disable of this principal or of one
      // of its roles in flight (they lock that row for update); the INSERT, a later statement, then
      // copies the grants they committed.
      boolean enabled = false;
      try (var ps = c.prepareStatement(LOCK_PRINCIPAL_AND_ROLES)) {
        ps.setLong(1, p.id());
        ps.setLong(2, p.id());
        try (var rs = ps.executeQuery()) {
          while (rs.next()) {
            enabled |= rs.getLong(1) == p.id() && !rs.getBoolean(2);
          }
        }
      }
      if (!enabled) {
        throw SyscallException.denied("principal '" + p.name() + "' is disabled");
      }
      try (var ps = c.prepareStatement(INSERT_SESSION)) {
        ps.setObject(1, sid);
        ps.setObject(2, nodeId);
        ps.setString(3, ttl.toSeconds() + " seconds");
        ps.setLong(4, p.id());
        ps.executeUpdate();
      }
      AuditLog.append(c, Ids.uuid7(), s, call, "principal:" + p.name(), "ok", null);
      return null;
    });
    return s;
  }

  /** Closes a session: later calls in it are denied. Closing twice is harmless. */
  public void closeSession(Session s) {
    // Not through call(): its check runs at commit and would see the session this call just closed.
    db.transaction(c -> {
      try (var ps = c.prepareStatement("UPDATE sessions SET closed_at = now() WHERE id = ? AND closed_at IS NULL")) {
        ps.setObject(1, s.id());
        if (ps.executeUpdate() == 1) {
          AuditLog.append(c, Ids.uuid7(), s, "session.close", "session:" + s.id(), "ok", null);
        }
      }
      return null;
    });
  }

  /** The kernel's own session (principal {@value #SYSTEM}, an admin) for housekeeping calls. */
  public Session system() {
    Session s = system;
    if (s == null) {
      synchronized (this) {
        if (system == null) {
          system = openSession(SYSTEM, Duration.ofDays(3650));
        }
        s = system;
      }
    }
    return s;
  }

  // ---- system calls --------------------------------------------------------------------------

  /**
   * Runs a system call: in one transaction, checks that {@code session} is valid and holds
   * {@code right} on {@code object} (admins hold every right), runs {@code body}, appends the audit
   * record and commits. Denied calls are audited and fail with PERMISSION_DENIED; a call whose body
   * fails is rolled back and audited as {@code error} (or {@code denied} for PERMISSION_DENIED).
   *
   * <p>Serialization failures, deadlocks and dropped connections re-run the whole transaction, so
   * {@code body} must do nothing outside the database it would regret doing twice ({@link
   * Tx#afterCommit} runs once, after the commit). A COMMIT whose answer was lost is resolved by looking
   * up the call's audit id: the call is never applied twice.
   *
   * <p>Calls with {@link Right#READ} commit asynchronously (no WAL flush wait): they change nothing but
   * the audit log, and a crash may lose only the last fraction of a second of read records.
   */
  public <T> T call(Session session, String call, Right right, String object, Body<T> body) {
    return run(session, call, object, right, right == Right.READ, body);
  }

  /**
   * Like {@link #call} for services that check rights themselves inside {@code body} (the file system
   * checks POSIX modes): the kernel still validates the session and audits; the body throws
   * PERMISSION_DENIED to refuse.
   */
  public <T> T callChecked(Session session, String call, String object, boolean readOnly, Body<T> body) {
    return run(session, call, object, null, readOnly, body);
  }

  /*
   * The body runs first; the check-and-audit statement and the COMMIT then travel together in one
   * round trip. A refused check raises inside that statement, so the body's work is rolled back
   * with it: nothing of a denied call is ever visible, and an empty call costs one round trip, like a
   * bare INSERT. A body may hand its last statement to that round trip too (Tx.last). Failed calls (denied or not) are recorded after the rollback in a transaction of
   * their own, and a denied caller learns only that it was denied, never the body's error.
   */
  private <T> T run(Session s, String call, String object, Right right, boolean readOnly, Body<T> body) {
    UUID id = Ids.uuid7();
    for (int attempt = 1; ; attempt++) {
      boolean commitSent = false;
      T result = null;
      Tx tx = null;
      try (Connection c = db.connection()) {
        c.setAutoCommit(false);
        try {
          tx = new Tx(c, s, id);
          if (readOnly) {
            tx.commitWithoutFlush();
          }
          result = body.run(tx);
          commitSent = true;
          List<String> notifications = tx.notificationsAfterCommit();
          boolean durable = !tx.commitsWithoutFlush();
          Tx.Last<?> last = tx.lastStatement();
          if (last != null) {
            Object row = AuditLog.commitChecked(c, last, id, s, call, object, right, durable, notifications);
            if (last.row() != null) {
              @SuppressWarnings("unchecked") // the body handed its result to its last statement's row mapper
              T r = (T) row;
              result = r;
            }
            c.commit(); // a no-op, as below
          } else if (durable && notifications.isEmpty() && nothingSent(c)) {
            // No transaction was begun (the driver begins one with the first statement): the checked
            // append alone is the call's transaction, one statement instead of BEGIN, it and COMMIT.
            c.setAutoCommit(true);
            AuditLog.appendChecked(c, id, s, call, object, right);
          } else {
            AuditLog.commitChecked(c, id, s, call, object, right, durable, notifications);
            c.commit(); // a no-op: the COMMIT went with the audit statement; keeps the driver's state exact
          }
        } catch (SQLException | RuntimeException e) {
          Database.rollbackQuietly(c);
          throw e;
        } finally {
          Database.restoreAutoCommit(c);
        }
      } catch (SQLException e) {
        Tx.Last<?> last = tx == null ? null : tx.lastStatement();
        SyscallException own = last == null || last.failure() == null || AuditLog.DENIED_STATE.equals(e.getSQLState())
            ? null : last.failure().apply(e);
        if (own != null) {
          throw fail(id, s, call, object, right, own);
        }
        if (AuditLog.DENIED_STATE.equals(e.getSQLState())) {
          throw fail(id, s, call, object, right, SyscallException.denied(
              "'" + s.principal() + "' was refused " + call + " on " + object));
        }
        if (commitSent && Database.isConnectionLoss(e) && AuditLog.committedAfterLoss(db, id)) {
          tx.runAfterCommit();
          count(call, "ok");
          if (last != null && last.row() != null) {
            throw new SyscallException(SyscallException.Code.UNAVAILABLE,
                call + " was applied, but its result was lost with the database connection (audit id " + id + ")");
          }
          return result;
        }
        if ((Database.isSerializationFailure(e) || Database.isConnectionLoss(e) && !db.unreachableWhileStopping())
            && attempt < Database.MAX_ATTEMPTS) {
          Database.backoff(attempt);
          continue;
        }
        throw fail(id, s, call, object, right, Database.translate(e));
      } catch (SyscallException e) {
        throw fail(id, s, call, object, right, e);
      } catch (RuntimeException e) {
        fail(id, s, call, object, right, new SyscallException(SyscallException.Code.INTERNAL, e.toString(), e));
        throw e;
      }
      tx.runAfterCommit();
      count(call, "ok");
      return result;
    }
  }

  /**
   * Records a failed call and returns the error its caller gets: PERMISSION_DENIED (with the reason)
   * if the session or right checks refuse the call, whatever the body did; else the body's error.
   */
  private SyscallException fail(UUID id, Session s, String call, String object, Right right, SyscallException e) {
    String refused;
    try {
      String outcome = e.code() == SyscallException.Code.PERMISSION_DENIED ? "denied" : "error";
      refused = db.transaction(c -> AuditLog.recordFailure(c, id, s, call, object, right, outcome,
          e.code() + ": " + e.getMessage()));
    } catch (RuntimeException auditError) {
      log.warn("could not audit failed call {} on {}: {}", call, object, auditError.getMessage());
      count(call, "error");
      return e;
    }
    if (refused == null) {
      count(call, e.code() == SyscallException.Code.PERMISSION_DENIED ? "denied" : "error");
      return e;
    }
    count(call, "denied");
    return refused.equals("invalid session") ? SyscallException.sessionEnded(s.principal())
        : SyscallException.denied("'" + s.principal() + "' lacks " + right + " on " + object);
  }

  /** Whether the body sent nothing: the driver has not begun the transaction yet. */
  private static boolean nothingSent(Connection c) throws SQLException {
    return c.unwrap(BaseConnection.class).getTransactionState() == TransactionState.IDLE;
  }

  private void count(String call, String outcome) {
    countCalls(call, outcome, 1);
  }

  /** Counts {@code n} calls a service checked, audited and committed itself (a group of them at once). */
  public void countCalls(String call, String outcome, int n) {
    counters.computeIfAbsent(call + '\0' + outcome, k -> Counter.builder("dbos.syscalls")
        .description("System calls by name and outcome").tag("call", call).tag("outcome", outcome)
        .register(meters)).increment(n);
  }

  @Override
  public void close() {
    List<AutoCloseable> toClose;
    synchronized (this) {
      toClose = new ArrayList<>(closeables);
      closeables.clear();
    }
    for (int i = toClose.size() - 1; i >= 0; i--) {
      try {
        toClose.get(i).close();
      } catch (Exception e) {
        log.warn("error while closing {}: {}", toClose.get(i), e.toString());
      }
    }
    Session s = system;
    if (s != null) {
      try {
        closeSession(s);
      } catch (RuntimeException e) {
        log.debug("could not close the system session: {}", e.getMessage());
      }
    }
    db.close();
  }
}
