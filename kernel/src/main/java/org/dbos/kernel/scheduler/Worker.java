package org.dbos.kernel.scheduler;

import java.io.IOException;
import java.io.InputStream;
import java.sql.Array;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.dbos.kernel.Ids;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Node;
import org.dbos.kernel.Session;
import org.dbos.kernel.Tx;
import org.dbos.kernel.db.Database;
import org.dbos.kernel.db.NotificationListener;
import org.dbos.kernel.files.FileSystem;
import org.dbos.kernel.security.AuditLog;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scheduler's worker on one node: it claims tasks its node can run, runs them (functions on a few
 * threads, processes as children) and records how they ended. Every write about a run is fenced by the
 * lease {@code (node_id, attempts)} it claimed: once the cluster re-queued a task (this node was
 * declared dead) or a newer attempt exists, the old run's writes change nothing.
 *
 * <p>Wake-ups: a NOTIFY on {@value Scheduler#CH_WORK} when work is enqueued or released, and a poll
 * every {@link Config#pollEvery} as a fallback (which also catches delayed tasks coming due and
 * re-queues the tasks of nodes that died where no worker ran).
 */
public final class Worker implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Worker.class);

  /**
   * @param functionThreads threads running function tasks; each runs a batch per transaction
   * @param batch           most tasks claimed, and completed, per transaction
   * @param maxInFlight     most tasks claimed and not yet finished on this node
   * @param runProcesses    whether this node runs process tasks
   * @param pollEvery       fallback poll period
   * @param killGrace       between SIGTERM and SIGKILL when a process is cancelled or times out
   */
  public record Config(int functionThreads, int batch, int maxInFlight, boolean runProcesses, Duration pollEvery,
                       Duration killGrace) {
    public static Config defaults() {
      return new Config(4, 64, 256, true, Duration.ofSeconds(1), Duration.ofSeconds(5));
    }
  }

  /** A claimed run: the task and the lease (this node, {@code attempt}) that fences it. */
  record Run(long id, String kind, String name, String args, int attempt, int maxAttempts, int cpus, long memoryMb,
             Integer timeoutMs, String queue, Instant deadline, int uid, int gid) {}

  private static final String QUEUES = """
      SELECT name, policy, concurrency, node_concurrency, rate_limit, rate_period_ms, fair_share FROM queues""";
  /**
   * Locks a limited queue's row, so concurrent claimers count in turn, and refills its token bucket:
   * rate_limit tokens per rate_period, at most rate_limit banked.
   */
  private static final String QUEUE_LOCK = """
      UPDATE queues SET
        rate_tokens = CASE WHEN rate_limit IS NULL THEN NULL ELSE least(rate_limit::float8,
          COALESCE(rate_tokens, rate_limit) + rate_limit * extract(epoch FROM clock_timestamp()
            - COALESCE(rate_refilled_at, clock_timestamp())) * 1000 / rate_period_ms) END,
        rate_refilled_at = CASE WHEN rate_limit IS NULL THEN NULL ELSE clock_timestamp() END
      WHERE name = ? RETURNING concurrency, node_concurrency, floor(rate_tokens)::int""";
  private static final String QUEUE_COUNTS = """
      SELECT count(*), count(*) FILTER (WHERE node_id = ?) FROM tasks WHERE queue = ? AND state = 'running'""";
  private static final String SPEND_TOKENS = "UPDATE queues SET rate_tokens = rate_tokens - ? WHERE name = ?";
  /** least_loaded: claim only if no live node has more free CPU slots (running tasks weigh at least one). */
  private static final String LEAST_LOADED = """
      WITH load AS (
        SELECT n.id, n.cpus - COALESCE((SELECT sum(greatest(r.cpus, 1)) FROM tasks r
                                        WHERE r.node_id = n.id AND r.state = 'running'), 0) AS free
        FROM nodes n WHERE n.status = 'alive')
      SELECT NOT EXISTS (SELECT 1 FROM load o WHERE o.id <> ? AND o.free > (SELECT free FROM load WHERE id = ?))""";
  /** The candidate rows of a queue in policy order, without locks; %s: the policy's ORDER BY. */
  private static final String CANDIDATES = """
      SELECT t.id, t.cpus, t.memory_mb, t.priority, t.owner_id FROM tasks t
      WHERE t.queue = ? AND t.state = 'queued' AND t.not_before <= now()
        AND ((t.kind = 'process' AND ?) OR (t.kind = 'function' AND t.name = ANY(?)))
        AND t.cpus <= ? AND t.memory_mb <= ? AND (? OR t.labels <@ ?::jsonb)
      ORDER BY %s LIMIT ?""";
  /**
   * Fair share: the same candidates per owner, so one owner's backlog cannot hide the others', each
   * ranked by its place in its owner's line plus the owner's running tasks: the least served owner goes first.
   */
  private static final String FAIR_CANDIDATES = """
      SELECT c.*, row_number() OVER (PARTITION BY c.owner_id ORDER BY %s)
               + (SELECT count(*) FROM tasks r WHERE r.queue = ? AND r.state = 'running' AND r.owner_id = c.owner_id)
               AS orank,
             (SELECT last_served_at FROM queue_owners s WHERE s.queue = ? AND s.owner_id = c.owner_id) AS served
      FROM (SELECT DISTINCT owner_id FROM tasks WHERE queue = ? AND state = 'queued') o
      CROSS JOIN LATERAL (SELECT t.id, t.cpus, t.memory_mb, t.priority, t.owner_id FROM tasks t
        WHERE t.owner_id = o.owner_id AND t.queue = ? AND t.state = 'queued' AND t.not_before <= now()
          AND ((t.kind = 'process' AND ?) OR (t.kind = 'function' AND t.name = ANY(?)))
          AND t.cpus <= ? AND t.memory_mb <= ? AND (? OR t.labels <@ ?::jsonb)
        ORDER BY %s LIMIT ?) c""";
  private static final String RANK = "row_number() OVER (ORDER BY %s)";
  private static final String FAIR_RANK = "row_number() OVER (ORDER BY t.orank, t.served NULLS FIRST, t.id)";
  private static final String SERVED = """
      INSERT INTO queue_owners (queue, owner_id, last_served_at)
      SELECT ?, owner_id, clock_timestamp() FROM tasks WHERE id = ANY(?) GROUP BY owner_id
      ON CONFLICT (queue, owner_id) DO UPDATE SET last_served_at = excluded.last_served_at""";
  /**
   * The claim: candidates ranked by policy, cut where the running sum of CPUs or memory would exceed
   * what this node has free, then locked with SKIP LOCKED (so concurrent claimers take disjoint rows
   * without waiting) and marked running under a new lease. It commits without waiting for the WAL
   * flush ({@code async}; see {@link #claim(String, int)}), also when it is a transaction of its own.
   */
  private static final String CLAIM = """
      WITH async AS (SELECT set_config('synchronous_commit', 'off', true)),
      cand AS (SELECT t.id, t.cpus, t.memory_mb, %s AS rank FROM (%s) t),
      fit AS (SELECT id, rank FROM (SELECT id, rank, sum(cpus) OVER w AS c, sum(memory_mb) OVER w AS m FROM cand
                                    WINDOW w AS (ORDER BY rank ROWS UNBOUNDED PRECEDING)) x
              WHERE c <= ? AND m <= ?),
      pick AS (SELECT t.id FROM tasks t JOIN fit f ON f.id = t.id WHERE t.state = 'queued'
               ORDER BY f.rank LIMIT ? FOR UPDATE OF t SKIP LOCKED)
      UPDATE tasks t SET state = 'running', node_id = ?, attempts = t.attempts + 1, started_at = clock_timestamp(),
             finished_at = NULL, cancel_requested = false,
             deadline_at = clock_timestamp() + t.timeout_ms * interval '1 millisecond'
      FROM pick, async WHERE t.id = pick.id
      RETURNING t.id, t.kind, t.name, t.args::text, t.attempts, t.max_attempts, t.cpus, t.memory_mb, t.timeout_ms,
                t.queue, t.deadline_at, (SELECT p.uid FROM principals p WHERE p.id = t.owner_id),
                (SELECT p.gid FROM principals p WHERE p.id = t.owner_id)""";
  /** Locks one run's lease before its function touches the database; no row: the lease is lost. */
  private static final String LOCK_LEASE = """
      SELECT cancel_requested FROM tasks WHERE id = ? AND node_id = ? AND attempts = ? AND state = 'running'
      FOR UPDATE""";
  /**
   * Completes a batch of function runs whose leases still hold. A run whose function used the
   * transaction has its lease locked already, so it always matches; one that did not has no database
   * effects to undo if it does not.
   */
  private static final String SUCCEED_LEASED = """
      UPDATE tasks t SET state = 'succeeded', result = u.result::jsonb, error = NULL, finished_at = clock_timestamp()
      FROM unnest(?::bigint[], ?::int[], ?::text[]) AS u(id, attempt, result)
      WHERE t.id = u.id AND t.attempts = u.attempt AND t.node_id = ? AND t.state = 'running' AND NOT t.cancel_requested
      RETURNING t.id""";
  private static final String CANCELLED_LEASES = """
      SELECT t.id FROM tasks t JOIN unnest(?::bigint[], ?::int[]) AS l(id, attempt) ON t.id = l.id AND t.attempts = l.attempt
      WHERE t.node_id = ? AND t.state = 'running' AND t.cancel_requested FOR UPDATE OF t""";
  private static final String SUCCEED = """
      UPDATE tasks t SET state = 'succeeded', result = u.result::jsonb, exit_code = u.exit_code, error = NULL,
             finished_at = clock_timestamp()
      FROM unnest(?::bigint[], ?::text[], ?::int[]) AS u(id, result, exit_code) WHERE t.id = u.id""";
  /** One attempt failed: retry after backoff (doubling) while attempts remain, else end in {@code final}. */
  private static final String FAIL = """
      UPDATE tasks SET
        state = CASE WHEN ? AND attempts < max_attempts THEN 'queued' ELSE ? END,
        not_before = CASE WHEN ? AND attempts < max_attempts
                          THEN clock_timestamp() + backoff_ms * power(2, attempts - 1) * interval '1 millisecond'
                          ELSE not_before END,
        finished_at = CASE WHEN ? AND attempts < max_attempts THEN NULL ELSE clock_timestamp() END,
        error = ?, exit_code = ?
      WHERE id = ? AND node_id = ? AND attempts = ? AND state = 'running'
      RETURNING state, queue""";
  /**
   * A dead node's runs: re-queued while attempts remain, else failed. Exactly once: the state guard.
   * Rows still locked (a completion of the dead node that its database session has not yet given up)
   * are skipped, not waited for, so declaring a death never blocks a heartbeat; the orphan sweep takes
   * them once the lock is gone (or finds them completed, if that completion committed).
   */
  private static final String REQUEUE_DEAD = """
      UPDATE tasks SET state = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
             not_before = now(), error = 'node ' || node_id || ' was lost during attempt ' || attempts,
             finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE now() END
      WHERE id IN (SELECT id FROM tasks WHERE state = 'running' AND node_id = ? FOR UPDATE SKIP LOCKED)
      RETURNING id, state, queue""";
  /**
   * This node's runs whose cancel was asked: the poll's path to a cancel, since its notification may
   * arrive before the run's process exists here, or be lost with the listening connection.
   */
  private static final String CANCEL_ASKED = """
      SELECT id FROM tasks WHERE node_id = ? AND state = 'running' AND cancel_requested""";
  /** Runs left on nodes no longer alive (their death was declared where no worker ran). */
  private static final String ORPHANED_NODES = """
      SELECT DISTINCT t.node_id FROM tasks t JOIN nodes n ON n.id = t.node_id
      WHERE t.state = 'running' AND n.status <> 'alive'""";
  /** A clean shutdown hands its runs back without consuming an attempt (the lease still moves on). */
  private static final String RELEASE_OWN = """
      UPDATE tasks SET state = 'queued', max_attempts = max_attempts + 1, not_before = now(),
             error = 'node ' || node_id || ' stopped during attempt ' || attempts
      WHERE node_id = ? AND state = 'running' RETURNING queue""";
  private static final String CRON_DUE = """
      SELECT c.name, c.owner_id, c.spec, c.time_zone, c.queue, c.kind, c.task_name, c.args::text, c.cpus, c.memory_mb
      FROM cron_schedules c WHERE c.next_run_at <= now() FOR UPDATE SKIP LOCKED""";
  private static final String CRON_FIRED = """
      UPDATE cron_schedules SET next_run_at = ?, last_run_at = now(), last_task = ? WHERE name = ?""";
  /** Whether this node runs as root, and so can (and must) drop to each task owner's uid. */
  private static final boolean AS_ROOT = "root".equals(System.getProperty("user.name"));
  private static final String CAPACITY = "SELECT cpus, memory_mb, labels::text FROM nodes WHERE id = ?";

  private final Kernel kernel;
  private final org.dbos.kernel.node.Membership membership;
  private final Database db;
  private final UUID self;
  private final Functions functions;
  private final Config cfg;
  private final String labelsJson;
  private final Session system;
  private final Semaphore wake = new Semaphore(0);
  private final Set<String> dirty = ConcurrentHashMap.newKeySet();
  private final ConcurrentHashMap<String, QueueSpec> queues = new ConcurrentHashMap<>();
  private final LinkedBlockingQueue<Run> functionRuns = new LinkedBlockingQueue<>();
  private final ConcurrentHashMap<Long, Process> processes = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<Long, Thread> functionThreadsByTask = new ConcurrentHashMap<>();
  /** Processes being stopped, so a repeated cancel does not signal them again during the grace. */
  private final Set<Long> stopping = ConcurrentHashMap.newKeySet();
  private final AtomicInteger inFlight = new AtomicInteger();
  private final AtomicInteger usedCpus = new AtomicInteger();
  private final AtomicLong usedMemory = new AtomicLong();
  private final int cpus;
  private final long memoryMb;
  private final List<Thread> threads = new ArrayList<>();
  private final ScheduledExecutorService housekeeping;
  private final NotificationListener listener;
  private volatile boolean running = true;
  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();
  private volatile long lastPoll;
  /** The notification handlers, kept to unsubscribe the same instances. */
  private final java.util.function.Consumer<String> onWork = this::onWork;
  private final java.util.function.Consumer<String> onCancel = this::onCancel;

  private Worker(Node node, Functions functions, Config cfg) {
    this.kernel = node.kernel();
    this.membership = node.membership();
    this.db = kernel.database();
    this.self = node.id();
    this.functions = functions;
    this.cfg = cfg;
    this.system = kernel.system();
    var cap = db.transaction(c -> {
      try (var ps = c.prepareStatement(CAPACITY)) {
        ps.setObject(1, self);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          return new Object[] {rs.getInt(1), rs.getLong(2), rs.getString(3)};
        }
      }
    });
    this.cpus = (Integer) cap[0];
    this.memoryMb = (Long) cap[1];
    this.labelsJson = (String) cap[2];
    this.listener = NotificationListener.of(db);
    this.housekeeping = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().name("dbos-sched-housekeeping").daemon().unstarted(r));
  }

  /** Starts a worker on {@code node} that runs processes and no functions. */
  public static Worker start(Node node) {
    return start(node, new Functions(), Config.defaults());
  }

  /** Starts a worker on {@code node}; it stops when the node's kernel closes (or on {@link #close}). */
  public static Worker start(Node node, Functions functions, Config cfg) {
    Worker w = new Worker(node, functions, cfg);
    node.membership().onDeath(w::onNodeDeath);
    w.listener.subscribe(Scheduler.CH_WORK, w.onWork);
    w.listener.subscribe(Scheduler.CH_CANCEL, w.onCancel);
    node.kernel().onClose(w.listener);
    node.kernel().onClose(w);
    w.threads.add(Thread.ofPlatform().name("dbos-claim").daemon().start(w::claimLoop));
    for (int i = 0; i < cfg.functionThreads(); i++) {
      w.threads.add(Thread.ofPlatform().name("dbos-fn-" + i).daemon().start(w::functionLoop));
    }
    w.housekeeping.scheduleWithFixedDelay(w::fireCron, 0, 1, TimeUnit.SECONDS);
    return w;
  }

  public Functions functions() {
    return functions;
  }

  // ---- wake-ups ---------------------------------------------------------------------------------

  private void onWork(String queue) {
    if (queue == null) {
      lastPoll = 0;
    } else {
      dirty.add(queue);
    }
    wake.release();
  }

  private void onCancel(String payload) {
    if (payload == null) {
      return;
    }
    cancel(Long.parseLong(payload));
  }

  /** Stops this node's run of task {@code id}, if it has one; its completion then records the cancel. */
  private void cancel(long id) {
    Process p = processes.get(id);
    if (p != null && stopping.add(id)) {
      Thread.ofVirtual().start(() -> stop(p));
    }
    // under the map's lock, so the interrupt reaches the thread before its run's entry is removed
    functionThreadsByTask.computeIfPresent(id, (k, t) -> {
      t.interrupt();
      return t;
    });
  }

  // ---- claiming -------------------------------------------------------------------------------

  private void claimLoop() {
    while (running) {
      try {
        long now = System.nanoTime();
        if (now - lastPoll > cfg.pollEvery().toNanos()) {
          lastPoll = now;
          if (selfFence()) {
            return;
          }
          refreshQueues();
          dirty.addAll(queues.keySet());
          sweepOrphans();
          sweepCancels();
        }
        boolean more = false;
        for (String q : List.copyOf(dirty)) {
          if (!running) {
            return;
          }
          dirty.remove(q);
          int free = cfg.maxInFlight() - inFlight.get();
          if (free <= 0) {
            dirty.add(q);
            break;
          }
          int limit = Math.min(free, cfg.batch());
          int got = claim(q, limit);
          if (got == limit) {
            dirty.add(q);
            more = true;
          }
        }
        if (!more || cfg.maxInFlight() - inFlight.get() <= 0) {
          long waitMs = Math.max(1, cfg.pollEvery().toMillis() - (System.nanoTime() - lastPoll) / 1_000_000);
          wake.tryAcquire(waitMs, TimeUnit.MILLISECONDS);
          wake.drainPermits();
        }
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        if (running) {
          log.warn("claiming failed: {}", e.getMessage());
          if (selfFence()) {
            return;
          }
          sleep(100);
        }
      }
    }
  }

  /**
   * A node the cluster declared dead no longer holds its leases: its runs belong to other nodes now.
   * Once it learns so (its next heartbeat finds its row dead) it stops every process at once (SIGKILL:
   * there is no one to report to) and claims nothing more, so a task does not keep running here while
   * it runs again elsewhere. A node cut off from the database learns it only when it reaches it again.
   */
  private boolean selfFence() {
    if (!membership.fenced()) {
      return false;
    }
    log.error("this node was declared dead: stopping its {} processes and claiming no more", processes.size());
    running = false;
    for (Process p : processes.values()) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
    }
    return true;
  }

  private void refreshQueues() {
    db.transaction(c -> {
      try (var ps = c.prepareStatement(QUEUES); ResultSet rs = ps.executeQuery()) {
        Set<String> seen = new HashSet<>();
        while (rs.next()) {
          Integer period = (Integer) rs.getObject(6);
          var q = new QueueSpec(rs.getString(1), rs.getString(2), (Integer) rs.getObject(3), (Integer) rs.getObject(4),
              (Integer) rs.getObject(5), period == null ? null : Duration.ofMillis(period), rs.getBoolean(7));
          queues.put(q.name(), q);
          seen.add(q.name());
        }
        queues.keySet().retainAll(seen);
      }
      return null;
    });
  }

  /** Claims up to {@code limit} tasks of queue {@code name} in one transaction and starts them; returns how many. */
  int claim(String name, int limit) {
    QueueSpec q = queues.get(name);
    if (q == null) {
      refreshQueues();
      q = queues.get(name);
      if (q == null) {
        return 0;
      }
    }
    final QueueSpec queue = q;
    int freeCpus = cpus - usedCpus.get();
    long freeMem = memoryMb - usedMemory.get();
    // A claim is a reservation, not a fact: if a database crash loses it, the task is simply queued
    // again, and the lost lease fences every write of the run that used it. So it skips the WAL flush.
    // A queue without limits, load balancing or fair share claims in one statement: one round trip.
    boolean plain = queue.concurrency() == null && queue.nodeConcurrency() == null && queue.rateLimit() == null
        && !queue.policy().equals("least_loaded") && !queue.fairShare();
    List<Run> runs = plain ? claimAlone(queue, limit, freeCpus, freeMem) : db.transaction(c -> {
      try (var st = c.createStatement()) {
        st.execute("SET LOCAL synchronous_commit = off");
      }
      int n = limit;
      if (queue.concurrency() != null || queue.nodeConcurrency() != null || queue.rateLimit() != null) {
        n = Math.min(n, headroom(c, queue.name()));
        if (n <= 0) {
          return List.<Run>of();
        }
      }
      if (queue.policy().equals("least_loaded") && !leastLoaded(c)) {
        return List.<Run>of();
      }
      List<Run> got = claim(c, queue, n, freeCpus, freeMem);
      if (queue.fairShare() && !got.isEmpty()) {
        try (var ps = c.prepareStatement(SERVED)) {
          Tx.bind(ps, queue.name(), c.createArrayOf("bigint", got.stream().map(Run::id).toArray()));
          ps.executeUpdate();
        }
      }
      if (queue.rateLimit() != null && !got.isEmpty()) {
        try (var ps = c.prepareStatement(SPEND_TOKENS)) {
          Tx.bind(ps, got.size(), queue.name());
          ps.executeUpdate();
        }
      }
      return got;
    });
    for (Run r : runs) {
      inFlight.incrementAndGet();
      usedCpus.addAndGet(r.cpus());
      usedMemory.addAndGet(r.memoryMb());
      if (r.kind().equals(TaskSpec.FUNCTION)) {
        functionRuns.add(r);
      } else {
        Thread.ofVirtual().name("dbos-task-" + r.id()).start(() -> runProcess(r));
      }
    }
    return runs.size();
  }

  /** The claim as its own autocommit statement. */
  private List<Run> claimAlone(QueueSpec queue, int n, int freeCpus, long freeMem) {
    try (Connection c = db.connection()) {
      return claim(c, queue, n, freeCpus, freeMem);
    } catch (SQLException e) {
      throw Database.translate(e);
    }
  }

  /** How many more tasks the queue's limits allow now; locks the queue row so concurrent claimers count in turn. */
  private int headroom(Connection c, String queue) throws SQLException {
    Integer conc;
    Integer nodeConc;
    Integer tokens;
    try (var ps = c.prepareStatement(QUEUE_LOCK)) {
      ps.setString(1, queue);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) {
          return 0;
        }
        conc = (Integer) rs.getObject(1);
        nodeConc = (Integer) rs.getObject(2);
        tokens = (Integer) rs.getObject(3);
      }
    }
    int n = tokens == null ? Integer.MAX_VALUE : tokens;
    if (conc != null || nodeConc != null) {
      try (var ps = c.prepareStatement(QUEUE_COUNTS)) {
        Tx.bind(ps, self, queue);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          if (conc != null) {
            n = Math.min(n, conc - rs.getInt(1));
          }
          if (nodeConc != null) {
            n = Math.min(n, nodeConc - rs.getInt(2));
          }
        }
      }
    }
    return n;
  }

  private boolean leastLoaded(Connection c) throws SQLException {
    try (var ps = c.prepareStatement(LEAST_LOADED)) {
      ps.setObject(1, self);
      ps.setObject(2, self);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() && rs.getBoolean(1);
      }
    }
  }

  private List<Run> claim(Connection c, QueueSpec q, int n, int freeCpus, long freeMem) throws SQLException {
    String order = q.policy().equals("priority") ? "t.priority DESC, t.id" : "t.id";
    boolean anyLabels = !q.policy().equals("locality");
    Array fnNames = c.createArrayOf("text", functions.names());
    List<Object> args = new ArrayList<>();
    String rank;
    String candidates;
    if (q.fairShare()) {
      rank = FAIR_RANK;
      candidates = FAIR_CANDIDATES.formatted(order.replace("t.", "c."), order);
      args.add(q.name());
      args.add(q.name());
      args.add(q.name());
    } else {
      rank = RANK.formatted(order);
      candidates = CANDIDATES.formatted(order);
    }
    args.addAll(List.of(q.name(), cfg.runProcesses(), fnNames, freeCpus, freeMem, anyLabels, labelsJson, n * 4));
    args.addAll(List.of(freeCpus, freeMem, n, self));
    try (var ps = c.prepareStatement(CLAIM.formatted(rank, candidates))) {
      Tx.bind(ps, args.toArray());
      try (ResultSet rs = ps.executeQuery()) {
        var out = new ArrayList<Run>();
        while (rs.next()) {
          var deadline = rs.getTimestamp(11);
          out.add(new Run(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getInt(5), rs.getInt(6),
              rs.getInt(7), rs.getLong(8), (Integer) rs.getObject(9), rs.getString(10),
              deadline == null ? null : deadline.toInstant(), rs.getInt(12), rs.getInt(13)));
        }
        return out;
      }
    }
  }

  private void finished(Run r) {
    dirty.add(r.queue()); // its slot is free again, here and, for a limited queue, in the cluster
    inFlight.decrementAndGet();
    usedCpus.addAndGet(-r.cpus());
    usedMemory.addAndGet(-r.memoryMb());
    wake.release();
  }

  // ---- function tasks -------------------------------------------------------------------------

  private void functionLoop() {
    var batch = new ArrayList<Run>(cfg.batch());
    while (running) {
      try {
        Run first = functionRuns.poll(200, TimeUnit.MILLISECONDS);
        if (first == null) {
          continue;
        }
        batch.clear();
        batch.add(first);
        functionRuns.drainTo(batch, cfg.batch() - 1);
        runFunctions(batch);
      } catch (InterruptedException e) {
        if (!running) {
          return;
        }
      }
    }
  }

  /**
   * Runs a batch of function tasks in one transaction: lock the leases still held, run each function
   * behind its own savepoint (only if it touches the transaction), then record all outcomes and commit.
   */
  private void runFunctions(List<Run> batch) {
    try {
      db.transaction(c -> {
        runFunctions(c, batch);
        return null;
      });
    } catch (RuntimeException e) {
      if (batch.size() > 1) {
        // one run may have broken the transaction: retry them one by one, so only it fails
        for (Run r : batch) {
          runFunctions(List.of(r));
        }
        return;
      }
      Run r = batch.getFirst();
      log.warn("task {} could not complete: {}", r.id(), e.getMessage());
      try {
        db.transaction(c -> {
          fail(c, r, true, "failed", e.getMessage(), null);
          return null;
        });
      } catch (RuntimeException e2) {
        log.warn("task {} could not be marked failed: {}", r.id(), e2.getMessage());
      }
    } finally {
      batch.forEach(this::finishedOnce);
    }
  }

  private final Set<Long> finishedRuns = ConcurrentHashMap.newKeySet();

  /** Releases a run's capacity once, however many times the batch was retried. */
  private void finishedOnce(Run r) {
    if (finishedRuns.remove(r.id())) {
      finished(r);
    }
  }

  /** A function's lease was lost before it touched the database: the run is someone else's now. */
  private static final class LeaseLost extends RuntimeException {
    LeaseLost(long task) {
      super("task " + task + ": lease lost", null, false, false);
    }
  }

  private void lockLease(Connection c, Run r) throws SQLException {
    try (var ps = c.prepareStatement(LOCK_LEASE)) {
      Tx.bind(ps, r.id(), self, r.attempt());
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) {
          throw new LeaseLost(r.id());
        }
        if (rs.getBoolean(1)) {
          throw new java.util.concurrent.CancellationException("task " + r.id() + " was cancelled");
        }
      }
    }
  }

  private void runFunctions(Connection c, List<Run> batch) throws SQLException {
    for (Run r : batch) {
      finishedRuns.add(r.id());
    }
    Tx tx = new Tx(c, system, null);
    var ok = new ArrayList<Run>();
    var okResults = new ArrayList<String>();
    var done = new ArrayList<Long>();
    var wakeQueues = new HashSet<String>();
    var failedFinal = new ArrayList<Long>();
    for (Run r : batch) {
      if (r.deadline() != null && Instant.now().isAfter(r.deadline())) {
        outcome(c, r, true, "timed_out", "timed out after " + r.timeoutMs() + " ms", null, done, failedFinal, wakeQueues);
        continue;
      }
      TaskFunction f = functions.get(r.name());
      var ctx = new TaskContext(r.id(), r.attempt(), r.args(), c, system.forTask(String.valueOf(r.id())),
          () -> lockLease(c, r));
      String result;
      functionThreadsByTask.put(r.id(), Thread.currentThread());
      try {
        result = f.run(ctx);
        ctx.release();
      } catch (LeaseLost e) {
        ctx.rollback();
        continue; // fenced: the cluster gave this task to someone else
      } catch (Exception e) {
        ctx.rollback();
        Thread.interrupted();
        boolean cancelled = e instanceof InterruptedException || e instanceof java.util.concurrent.CancellationException;
        outcome(c, r, !cancelled, cancelled ? "cancelled" : "failed", cancelled ? "cancelled" : e.toString(), null,
            done, failedFinal, wakeQueues);
        continue;
      } finally {
        functionThreadsByTask.remove(r.id());
        Thread.interrupted(); // a cancel that came as the function returned is the lease's to record, not the next run's
      }
      if (r.deadline() != null && Instant.now().isAfter(r.deadline())) {
        ctx.rollback();
        outcome(c, r, true, "timed_out", "timed out after " + r.timeoutMs() + " ms", null, done, failedFinal, wakeQueues);
        continue;
      }
      ok.add(r);
      okResults.add(result);
    }
    if (!ok.isEmpty()) {
      Array ids = c.createArrayOf("bigint", ok.stream().map(Run::id).toArray());
      Array attempts = c.createArrayOf("int", ok.stream().map(Run::attempt).toArray());
      List<Long> succeeded = tx.query(SUCCEED_LEASED, rs -> rs.getLong(1), ids, attempts,
          c.createArrayOf("text", okResults.toArray()), self);
      if (succeeded.size() < ok.size()) {
        // cancelled while it ran (a lost lease needs nothing)
        var cancelled = new HashSet<>(tx.query(CANCELLED_LEASES, rs -> rs.getLong(1), ids, attempts, self));
        for (Run r : ok) {
          if (cancelled.contains(r.id())) {
            outcome(c, r, false, "cancelled", "cancelled", null, done, failedFinal, wakeQueues);
          }
        }
      }
      if (!succeeded.isEmpty()) {
        wakeQueues.addAll(tx.query(Scheduler.RELEASE_DEPENDENTS, rs -> rs.getString(1),
            c.createArrayOf("bigint", succeeded.toArray())));
        done.addAll(succeeded);
        for (Run r : ok) {
          freed(r, wakeQueues);
        }
      }
    }
    if (!failedFinal.isEmpty()) {
      Scheduler.failDependents(tx, failedFinal);
    }
    for (String q : wakeQueues) {
      tx.notify(Scheduler.CH_WORK, q);
    }
    notifyDone(tx, done);
  }

  private void succeed(Tx tx, List<Long> ids, List<String> results, Integer[] exitCodes, Set<String> wakeQueues)
      throws SQLException {
    Connection c = tx.connection();
    Array idArray = c.createArrayOf("bigint", ids.toArray());
    tx.update(SUCCEED, idArray, c.createArrayOf("text", results.toArray()), c.createArrayOf("int", exitCodes));
    wakeQueues.addAll(tx.query(Scheduler.RELEASE_DEPENDENTS, rs -> rs.getString(1), idArray));
  }

  /** A finished run of a queue with a concurrency limit frees a slot any node may take: wake them. */
  private void freed(Run r, Set<String> wakeQueues) {
    QueueSpec q = queues.get(r.queue());
    if (q != null && q.concurrency() != null) {
      wakeQueues.add(r.queue());
    }
  }

  private void outcome(Connection c, Run r, boolean retry, String finalState, String error, Integer exitCode,
                       List<Long> done, List<Long> failedFinal, Set<String> wakeQueues) throws SQLException {
    String state = fail(c, r, retry, finalState, error, exitCode);
    if (state == null) {
      return;
    }
    freed(r, wakeQueues);
    if (state.equals("queued")) {
      wakeQueues.add(r.queue());
    } else {
      done.add(r.id());
      failedFinal.add(r.id());
    }
  }

  /** Records a failed attempt under the run's lease; returns the new state, or null if the lease was lost. */
  private String fail(Connection c, Run r, boolean retry, String finalState, String error, Integer exitCode)
      throws SQLException {
    try (var ps = c.prepareStatement(FAIL)) {
      Tx.bind(ps, retry, finalState, retry, retry, error, exitCode, r.id(), self, r.attempt());
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? rs.getString(1) : null;
      }
    }
  }

  private static void notifyDone(Tx tx, List<Long> done) throws SQLException {
    if (done.isEmpty()) {
      return;
    }
    var sb = new StringBuilder();
    for (Long id : done) {
      if (sb.length() > 7000) {
        sb.setLength(0);
        sb.append('*');
        break;
      }
      if (!sb.isEmpty()) {
        sb.append(',');
      }
      sb.append(id);
    }
    tx.notify(Scheduler.CH_DONE, sb.toString());
  }

  // ---- process tasks --------------------------------------------------------------------------

  private void runProcess(Run r) {
    TaskOutput output = null;
    try {
      var argv = new ArrayList<String>();
      if (AS_ROOT && r.uid() != 0) {
        // the task runs with its owner's POSIX identity, not the node's
        argv.addAll(List.of("setpriv", "--reuid=" + r.uid(), "--regid=" + r.gid(), "--clear-groups", "--"));
      }
      argv.add(r.name());
      argv.addAll(Json.toStrings(r.args()));
      try {
        output = TaskOutput.open(FileSystem.of(kernel), system, r.id(), r.uid(), r.gid());
      } catch (RuntimeException e) {
        complete(r, false, true, "failed", "cannot open its output files: " + e.getMessage(), null);
        return;
      }
      Process p;
      try {
        p = new ProcessBuilder(argv).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
      } catch (IOException e) {
        complete(r, false, true, "failed", "cannot start " + r.name() + ": " + e.getMessage(), null);
        return;
      }
      processes.put(r.id(), p);
      TaskOutput files = output;
      Thread out = Thread.ofVirtual().start(() -> capture(r, files, TaskOutput.STDOUT, p.getInputStream()));
      Thread err = Thread.ofVirtual().start(() -> capture(r, files, TaskOutput.STDERR, p.getErrorStream()));
      boolean timedOut = false;
      if (r.timeoutMs() != null) {
        if (!p.waitFor(r.timeoutMs(), TimeUnit.MILLISECONDS)) {
          timedOut = true;
          stop(p);
        }
      }
      int code = p.waitFor();
      out.join();
      err.join();
      processes.remove(r.id());
      if (!running) {
        return; // stopped by close(): the run goes back to the queue, not into the books as a failure
      }
      if (timedOut) {
        complete(r, false, true, "timed_out", "timed out after " + r.timeoutMs() + " ms", code);
      } else if (code == 0) {
        complete(r, true, false, null, null, 0);
      } else {
        // a cancelled run exits by our signal; its lease row says so
        complete(r, false, true, "failed", "exited with " + code, code);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (RuntimeException e) {
      log.warn("task {} failed in the worker: {}", r.id(), e.getMessage());
    } finally {
      processes.remove(r.id());
      stopping.remove(r.id());
      if (output != null) {
        output.close();
      }
      finished(r);
    }
  }

  /** SIGTERM to the process and its descendants, then SIGKILL after the grace period. */
  private void stop(Process p) {
    p.descendants().forEach(ProcessHandle::destroy);
    p.destroy();
    try {
      if (!p.waitFor(cfg.killGrace().toMillis(), TimeUnit.MILLISECONDS)) {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Appends what the process writes on {@code in} to its output file, a durable write per read. */
  private void capture(Run r, TaskOutput files, String stream, InputStream in) {
    byte[] buf = new byte[64 * 1024];
    try (in) {
      int n;
      while ((n = in.read(buf)) > 0) {
        files.append(stream, buf, n);
      }
    } catch (IOException | RuntimeException e) {
      log.warn("lost {} of task {}: {}", stream, r.id(), e.getMessage());
    }
  }

  private void complete(Run r, boolean ok, boolean retry, String finalState, String error, Integer exitCode) {
    db.transaction(c -> {
      Tx tx = new Tx(c, system, null);
      var done = new ArrayList<Long>();
      var wakeQueues = new HashSet<String>();
      var lease = tx.queryOne("SELECT cancel_requested FROM tasks WHERE id = ? AND node_id = ? AND attempts = ?"
          + " AND state = 'running' FOR UPDATE", rs -> rs.getBoolean(1), r.id(), self, r.attempt());
      if (lease.isEmpty()) {
        return null; // fenced
      }
      if (lease.get()) {
        outcome(c, r, false, "cancelled", "cancelled", exitCode, done, new ArrayList<>(), wakeQueues);
        Scheduler.failDependents(tx, List.of(r.id()));
      } else if (ok) {
        succeed(tx, List.of(r.id()), java.util.Collections.singletonList(null), new Integer[] {exitCode}, wakeQueues);
        freed(r, wakeQueues);
        done.add(r.id());
      } else {
        var failedFinal = new ArrayList<Long>();
        outcome(c, r, retry, finalState, error, exitCode, done, failedFinal, wakeQueues);
        if (!failedFinal.isEmpty()) {
          Scheduler.failDependents(tx, failedFinal);
        }
      }
      for (String q : wakeQueues) {
        tx.notify(Scheduler.CH_WORK, q);
      }
      if (done.isEmpty() && lease.get()) {
        done.add(r.id());
      }
      notifyDone(tx, done);
      return null;
    });
  }

  // ---- failures -------------------------------------------------------------------------------

  /** Inside the transaction that declares {@code dead} dead: re-queue or fail its runs, exactly once. */
  private void onNodeDeath(Connection c, UUID dead) throws SQLException {
    requeue(new Tx(c, system, null), dead);
  }

  private static void requeue(Tx tx, UUID dead) throws SQLException {
    var failed = new ArrayList<Long>();
    var queuesToWake = new HashSet<String>();
    var rows = tx.query(REQUEUE_DEAD, rs -> new Object[] {rs.getLong(1), rs.getString(2), rs.getString(3)}, dead);
    for (Object[] row : rows) {
      if ("failed".equals(row[1])) {
        failed.add((Long) row[0]);
      } else {
        queuesToWake.add((String) row[2]);
      }
    }
    if (!failed.isEmpty()) {
      Scheduler.failDependents(tx, failed);
      notifyDone(tx, failed);
    }
    for (String q : queuesToWake) {
      tx.notify(Scheduler.CH_WORK, q);
    }
    if (!rows.isEmpty()) {
      log.atWarn().addKeyValue("node", dead).addKeyValue("requeued", rows.size() - failed.size())
          .addKeyValue("failed", failed.size()).log("took back the tasks of a lost node");
    }
  }

  private void sweepCancels() {
    if (processes.isEmpty() && functionThreadsByTask.isEmpty()) {
      return;
    }
    db.transaction(c -> new Tx(c, system, null).query(CANCEL_ASKED, rs -> rs.getLong(1), self))
        .forEach(this::cancel);
  }

  private void sweepOrphans() {
    db.transaction(c -> {
      Tx tx = new Tx(c, system, null);
      for (UUID n : tx.query(ORPHANED_NODES, rs -> rs.getObject(1, UUID.class))) {
        requeue(tx, n);
        AuditLog.append(c, Ids.uuid7(), system, "task.requeue", "node:" + n, "ok", "tasks of a node no longer alive");
      }
      return null;
    });
  }

  // ---- cron -----------------------------------------------------------------------------------

  /** Enqueues the task of every due schedule, once however many ticks were missed, and moves it to its next tick. */
  private void fireCron() {
    if (!running) {
      return;
    }
    try {
      db.transaction(c -> {
        Tx tx = new Tx(c, system, null);
        var due = tx.query(CRON_DUE, rs -> new Object[] {rs.getString(1), rs.getLong(2), rs.getString(3),
            rs.getString(4), rs.getString(5), rs.getString(6), rs.getString(7), rs.getString(8), rs.getInt(9),
            rs.getLong(10)});
        for (Object[] d : due) {
          String name = (String) d[0];
          Cron cron = Cron.parse((String) d[2], (String) d[3]);
          var spec = new TaskSpec((String) d[5], (String) d[6], (String) d[7], (String) d[4], 0, (Integer) d[8],
              (Long) d[9], null, 1, Duration.ofSeconds(1), null, null, null);
          Session owner = new Session(system.id(), (Long) d[1], null, false, 0, 0, self, null);
          long id = Scheduler.insert(new Tx(c, owner, null), List.of(spec), name).getFirst();
          tx.update(CRON_FIRED, cron.next(ZonedDateTime.now(cron.zone())).toInstant(), id, name);
          AuditLog.append(c, Ids.uuid7(), system, "cron.fire", "cron:" + name, "ok", "task " + id);
        }
        return null;
      });
    } catch (RuntimeException e) {
      log.warn("cron tick failed: {}", e.getMessage());
    }
  }

  // ---- shutdown -------------------------------------------------------------------------------

  /**
   * Stops claiming, lets running functions finish (up to the kill grace), stops processes (SIGTERM,
   * then SIGKILL) and hands every run still held back to the queue without consuming an attempt.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    running = false;
    wake.release();
    housekeeping.shutdownNow();
    listener.unsubscribe(Scheduler.CH_WORK, onWork);
    listener.unsubscribe(Scheduler.CH_CANCEL, onCancel);
    long deadline = System.nanoTime() + cfg.killGrace().toNanos();
    for (Thread t : threads) {
      try {
        t.join(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      t.interrupt();
    }
    processes.values().forEach(this::stop);
    try {
      db.transaction(c -> {
        Tx tx = new Tx(c, system, null);
        for (String q : new HashSet<>(tx.query(RELEASE_OWN, rs -> rs.getString(1), self))) {
          tx.notify(Scheduler.CH_WORK, q);
        }
        return null;
      });
    } catch (RuntimeException e) {
      log.warn("could not hand back this node's tasks: {}", e.getMessage());
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
