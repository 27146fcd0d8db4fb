package org.dbos.kernel.node;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.Ids;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;
import org.dbos.kernel.security.AuditLog;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This node's membership in the cluster: it registers a row in {@code nodes}, heartbeats it on the
 * database clock, and declares dead every node whose heartbeat lapsed. Declaring is a guarded UPDATE
 * (status still 'alive'), so when several nodes notice the same death only one transaction wins, and
 * the death handlers (the scheduler re-queueing the dead node's tasks) run exactly once, inside it.
 *
 * <p>A node that finds itself declared dead (it stalled past the timeout) is fenced: it stops
 * heartbeating and tells its owner, which must stop the node; its leases already belong to others.
 */
public final class Membership implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Membership.class);

  /** Work done inside the transaction that declares {@code deadNode} dead. */
  @FunctionalInterface
  public interface DeathHandler {
    void onDeath(Connection c, UUID deadNode) throws SQLException;
  }

  private static final String REGISTER = """
      INSERT INTO nodes (id, host, pid, data_dir, cpus, memory_mb, labels, http_address, version, status)
      VALUES (?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, 'alive')""";
  private static final String HEARTBEAT = "UPDATE nodes SET heartbeat_at = now() WHERE id = ? AND status = 'alive'";
  private static final String DECLARE_DEAD = """
      UPDATE nodes SET status = 'dead', ended_at = now()
      WHERE status = 'alive' AND id <> ? AND heartbeat_at < now() - ?::interval
      RETURNING id, host, pid""";
  private static final String LEAVE = "UPDATE nodes SET status = 'stopped', ended_at = now() WHERE id = ? AND status = 'alive'";
  static final String LIST = """
      SELECT id, host, pid, data_dir, cpus, memory_mb, labels::text, http_address, version, status,
             started_at, heartbeat_at, ended_at
      FROM nodes ORDER BY status = 'alive' DESC, started_at DESC LIMIT ?""";

  private final Kernel kernel;
  private final UUID self;
  private final Duration interval;
  private final Duration timeout;
  private final List<DeathHandler> deathHandlers = new CopyOnWriteArrayList<>();
  private final ScheduledExecutorService ticker;
  private final Runnable onFenced;
  private volatile boolean fenced;

  public Membership(Kernel kernel, UUID self, Duration interval, Duration timeout, Runnable onFenced) {
    this.kernel = kernel;
    this.self = self;
    this.interval = interval;
    this.timeout = timeout;
    this.onFenced = onFenced;
    this.ticker = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "dbos-heartbeat");
      t.setDaemon(true);
      return t;
    });
  }

  /** Registers this node (audited as {@code node.join}) and starts heartbeating. */
  public void join(String host, long pid, String dataDir, int cpus, long memoryMb, String labelsJson,
                   String httpAddress, String version) {
    kernel.call(kernel.system(), "node.join", Right.ADMIN, "node:" + self, tx ->
        tx.update(REGISTER, self, host, pid, dataDir, cpus, memoryMb, labelsJson, httpAddress, version));
    long ms = interval.toMillis();
    ticker.scheduleWithFixedDelay(this::tick, ms, ms, TimeUnit.MILLISECONDS);
  }

  /** Runs {@code handler} in the transaction that declares a node dead. */
  public void onDeath(DeathHandler handler) {
    deathHandlers.add(handler);
  }

  public UUID self() {
    return self;
  }

  public Duration timeout() {
    return timeout;
  }

  public boolean fenced() {
    return fenced;
  }

  private void tick() {
    if (fenced) {
      return;
    }
    try {
      Session system = kernel.system();
      boolean alive = kernel.database().transaction(c -> {
        try (var ps = c.prepareStatement(HEARTBEAT)) {
          ps.setObject(1, self);
          if (ps.executeUpdate() == 0) {
            return false;
          }
        }
        try (var ps = c.prepareStatement(DECLARE_DEAD)) {
          ps.setObject(1, self);
          ps.setString(2, timeout.toMillis() + " milliseconds");
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              UUID dead = rs.getObject(1, UUID.class);
              log.atWarn().addKeyValue("node", dead).addKeyValue("host", rs.getString(2))
                  .addKeyValue("pid", rs.getLong(3)).log("node missed its heartbeats for {}: declared dead", timeout);
              AuditLog.append(c, Ids.uuid7(), system, "node.declare-dead", "node:" + dead, "ok",
                  "no heartbeat for " + timeout);
              for (DeathHandler h : deathHandlers) {
                h.onDeath(c, dead);
              }
            }
          }
        }
        return true;
      });
      if (!alive) {
        fenced = true;
        log.error("this node ({}) was declared dead by the cluster: it stalled past the {} heartbeat timeout", self, timeout);
        onFenced.run();
      }
    } catch (RuntimeException e) {
      log.warn("heartbeat failed: {}", e.getMessage());
    }
  }

  static NodeInfo map(ResultSet rs) throws SQLException {
    return new NodeInfo(rs.getObject(1, UUID.class), rs.getString(2), rs.getLong(3), rs.getString(4), rs.getInt(5),
        rs.getLong(6), rs.getString(7), rs.getString(8), rs.getString(9), rs.getString(10),
        instant(rs, 11), instant(rs, 12), instant(rs, 13));
  }

  private static java.time.Instant instant(ResultSet rs, int i) throws SQLException {
    var t = rs.getTimestamp(i);
    return t == null ? null : t.toInstant();
  }

  /** Stops heartbeating and marks this node stopped (a clean leave, audited as {@code node.leave}). */
  @Override
  public void close() {
    ticker.shutdownNow();
    if (!fenced) {
      try {
        kernel.call(kernel.system(), "node.leave", Right.ADMIN, "node:" + self, tx -> tx.update(LEAVE, self));
      } catch (RuntimeException e) {
        log.warn("could not mark this node stopped: {}", e.getMessage());
      }
    }
  }
}
