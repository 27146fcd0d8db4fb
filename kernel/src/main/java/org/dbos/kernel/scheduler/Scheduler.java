package org.dbos.kernel.scheduler;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Array;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.Tx;
import org.dbos.kernel.db.NotificationListener;

/**
 * The scheduler's system calls: queues, tasks and cron schedules (a process task's output is in DBFS
 * files, see {@link TaskOutput}). Tasks run on the nodes' {@link Worker}s; this class only writes and
 * reads the tables, so a client kernel (the CLI) uses it as well as a node.
 *
 * <p>Rights: submitting needs WRITE on {@code queue:<name>}; creating or changing a queue and cron
 * schedules need ADMIN on {@code queue:<name>} / {@code cron:<name>}. A task is visible to, and can be
 * cancelled by, its owner and admins.
 *
 * <p>Channels: {@value #CH_WORK} (payload: a queue name) wakes workers when a task becomes claimable;
 * {@value #CH_DONE} (payload: comma-separated ids, or {@code *}) wakes waiters when tasks finish;
 * {@value #CH_CANCEL} (payload: a task id) tells the running node to stop it.
 */
public final class Scheduler {
  public static final String CH_WORK = "dbos_task";
  public static final String CH_DONE = "dbos_task_done";
  public static final String CH_CANCEL = "dbos_task_cancel";
  public static final Set<String> POLICIES = Set.of("fifo", "priority", "least_loaded", "locality");
  public static final Set<String> STATES = Set.of("waiting", "queued", "running", "succeeded", "failed", "cancelled",
      "timed_out");

  static final String TASK_COLUMNS = """
      t.id, t.queue, p.name, t.kind, t.name, t.args::text, t.state, t.priority, t.cpus, t.memory_mb, t.attempts,
      t.max_attempts, t.node_id, t.exit_code, t.result::text, t.error, t.depends_on, t.cron, t.created_at,
      t.not_before, t.started_at, t.finished_at""";
  private static final String GET = "SELECT " + TASK_COLUMNS + " FROM tasks t JOIN principals p ON p.id = t.owner_id WHERE t.id = ?";
  private static final String LIST = "SELECT " + TASK_COLUMNS + """
       FROM tasks t JOIN principals p ON p.id = t.owner_id
      WHERE (?::text IS NULL OR t.state = ?) AND (?::text IS NULL OR t.queue = ?) AND (?::uuid IS NULL OR t.node_id = ?)
        AND (?::text IS NULL OR p.name = ?) AND (? OR t.owner_id = ?)
      ORDER BY t.id DESC LIMIT ?""";
  private static final String QUEUE_EXISTS = "SELECT 1 FROM queues WHERE name = ?";
  /** A dependency the submitter may see (its own task, or any for an admin), locked until the submit commits. */
  private static final String DEPENDENCY = "SELECT state FROM tasks WHERE id = ? AND (? OR owner_id = ?) FOR SHARE";
  /** A batch of tasks in one statement, one array per column; ids come back in list order. */
  private static final String INSERT = """
      INSERT INTO tasks (queue, owner_id, kind, name, args, priority, cpus, memory_mb, labels, state, max_attempts,
                         backoff_ms, timeout_ms, not_before, depends_on, cron, error, finished_at)
      SELECT u.queue, ?, u.kind, u.name, u.args::jsonb, u.priority, u.cpus, u.mem, u.labels::jsonb, u.state,
             u.max_attempts, u.backoff, u.timeout, COALESCE(u.not_before::timestamptz, now()), u.depends_on, ?,
             u.error, CASE WHEN u.error IS NOT NULL THEN now() END
      FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::int[], ?::int[], ?::bigint[], ?::text[], ?::text[],
                  ?::int[], ?::int[], ?::int[], ?::text[], ?::bigint[], ?::text[])
             WITH ORDINALITY AS u(queue, kind, name, args, priority, cpus, mem, labels, state, max_attempts, backoff,
                                  timeout, not_before, depends_on, error, n)
      ORDER BY u.n
      RETURNING id""";
  private static final String CANCEL = """
      UPDATE tasks t SET cancel_requested = true,
             state = CASE WHEN o.state IN ('queued', 'waiting') THEN 'cancelled' ELSE o.state END,
             finished_at = CASE WHEN o.state IN ('queued', 'waiting') THEN now() ELSE o.finished_at END
      FROM (SELECT id, state, finished_at FROM tasks WHERE id = ? FOR UPDATE) o
      WHERE t.id = o.id RETURNING o.state, t.node_id""";
  /** Fails the waiting tasks that depend on the given ones; run until it returns none (see failDependents). */
  static final String FAIL_DEPENDENTS = """
      UPDATE tasks SET state = 'failed', finished_at = now(), error = 'dependency ' || depends_on || ' did not succeed'
      WHERE depends_on = ANY(?) AND state = 'waiting' RETURNING id""";
  /** Makes the waiting tasks of succeeded ones claimable; returns their queues to wake. */
  static final String RELEASE_DEPENDENTS = """
      UPDATE tasks SET state = 'queued', not_before = greatest(not_before, now())
      WHERE depends_on = ANY(?) AND state = 'waiting' RETURNING queue""";
  private static final String QUEUE_COLUMNS = """
      q.name, q.policy, q.concurrency, q.node_concurrency, q.rate_limit, q.rate_period_ms, q.fair_share,
      (SELECT count(*) FROM tasks t WHERE t.queue = q.name AND t.state = 'queued'),
      (SELECT count(*) FROM tasks t WHERE t.queue = q.name AND t.state = 'running')""";
  private static final String QUEUE_INSERT = """
      INSERT INTO queues (name, policy, concurrency, node_concurrency, rate_limit, rate_period_ms, fair_share, owner_id)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)""";
  private static final String QUEUE_UPDATE = """
      UPDATE queues SET policy = ?, concurrency = ?, node_concurrency = ?, rate_limit = ?, rate_period_ms = ?,
             fair_share = ?, rate_tokens = NULL, rate_refilled_at = NULL WHERE name = ?""";
  private static final String CRON_COLUMNS = """
      c.name, p.name, c.spec, c.time_zone, c.queue, c.kind, c.task_name, c.args::text, c.next_run_at, c.last_run_at,
      c.last_task""";
  private static final String CRON_INSERT = """
      INSERT INTO cron_schedules (name, owner_id, spec, time_zone, queue, kind, task_name, args, cpus, memory_mb,
                                  next_run_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?)""";

  private final Kernel kernel;
  private final ConcurrentHashMap<Long, CompletableFuture<Void>> finishWaiters = new ConcurrentHashMap<>();
  private volatile boolean listening;

  public Scheduler(Kernel kernel) {
    this.kernel = kernel;
  }

  public Kernel kernel() {
    return kernel;
  }

  // ---- queues ---------------------------------------------------------------------------------

  /** Creates a queue (ADMIN on {@code queue:<name>}). ALREADY_EXISTS if taken, INVALID_ARGUMENT for bad settings. */
  public QueueInfo createQueue(Session s, QueueSpec q) {
    validate(q);
    return kernel.call(s, "queue.create", Right.ADMIN, "queue:" + q.name(), tx -> {
      tx.update(QUEUE_INSERT, q.name(), q.policy(), q.concurrency(), q.nodeConcurrency(), q.rateLimit(),
          q.ratePeriod() == null ? null : (int) q.ratePeriod().toMillis(), q.fairShare(), s.principalId());
      return queue(tx, q.name()).orElseThrow();
    });
  }

  /** Replaces a queue's settings (ADMIN on {@code queue:<name>}); wakes workers, a raised limit may free work. */
  public QueueInfo setQueue(Session s, QueueSpec q) {
    validate(q);
    return kernel.call(s, "queue.set", Right.ADMIN, "queue:" + q.name(), tx -> {
      if (tx.update(QUEUE_UPDATE, q.policy(), q.concurrency(), q.nodeConcurrency(), q.rateLimit(),
          q.ratePeriod() == null ? null : (int) q.ratePeriod().toMillis(), q.fairShare(), q.name()) == 0) {
        throw SyscallException.notFound("no queue named '" + q.name() + "'");
      }
      tx.notify(CH_WORK, q.name());
      return queue(tx, q.name()).orElseThrow();
    });
  }

  public Optional<QueueInfo> queue(Session s, String name) {
    return kernel.call(s, "queue.get", Right.READ, "queue:" + name, tx -> queue(tx, name));
  }

  public List<QueueInfo> queues(Session s) {
    return kernel.call(s, "queue.list", Right.READ, "queue:",
        tx -> tx.query("SELECT " + QUEUE_COLUMNS + " FROM queues q ORDER BY q.name", Scheduler::mapQueue));
  }

  private static Optional<QueueInfo> queue(Tx tx, String name) throws SQLException {
    return tx.queryOne("SELECT " + QUEUE_COLUMNS + " FROM queues q WHERE q.name = ?", Scheduler::mapQueue, name);
  }

  private static QueueInfo mapQueue(ResultSet rs) throws SQLException {
    Integer period = (Integer) rs.getObject(6);
    return new QueueInfo(new QueueSpec(rs.getString(1), rs.getString(2), (Integer) rs.getObject(3),
        (Integer) rs.getObject(4), (Integer) rs.getObject(5), period == null ? null : Duration.ofMillis(period),
        rs.getBoolean(7)), rs.getLong(8), rs.getLong(9));
  }

  static void validate(QueueSpec q) {
    if (q.name() == null || !q.name().matches("[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")) {
      throw SyscallException.invalid("invalid queue name '" + q.name() + "': letters, digits and _ . - (at most 64)");
    }
    if (!POLICIES.contains(q.policy())) {
      throw SyscallException.invalid("unknown policy '" + q.policy() + "': one of fifo, priority, least_loaded, locality");
    }
    positive("concurrency", q.concurrency());
    positive("node concurrency", q.nodeConcurrency());
    positive("rate limit", q.rateLimit());
    if ((q.rateLimit() == null) != (q.ratePeriod() == null)) {
      throw SyscallException.invalid("a rate limit needs both a count and a period");
    }
    if (q.ratePeriod() != null && (q.ratePeriod().toMillis() <= 0 || q.ratePeriod().toMillis() > Integer.MAX_VALUE)) {
      throw SyscallException.invalid("rate period must be positive, not " + q.ratePeriod());
    }
  }

  private static void positive(String what, Integer v) {
    if (v != null && v <= 0) {
      throw SyscallException.invalid(what + " must be positive, not " + v);
    }
  }

  // ---- tasks ----------------------------------------------------------------------------------

  /**
   * Submits a task (WRITE on {@code queue:<queue>}) and returns its id. NOT_FOUND for an unknown queue
   * or dependency; INVALID_ARGUMENT for a process whose program cannot be found or run here, negative
   * resources, bad JSON. A task whose dependency already failed is created failed.
   */
  public long submit(Session s, TaskSpec t) {
    return submitAll(s, List.of(t)).getFirst();
  }

  /** Submits tasks of one queue in one transaction: all or none. */
  public List<Long> submitAll(Session s, List<TaskSpec> tasks) {
    if (tasks.isEmpty()) {
      return List.of();
    }
    String queue = tasks.getFirst().queue();
    for (TaskSpec t : tasks) {
      if (!t.queue().equals(queue)) {
        throw SyscallException.invalid("a batch goes to one queue: " + queue + " and " + t.queue());
      }
      check(t);
    }
    return kernel.call(s, "task.submit", Right.WRITE, "queue:" + queue, tx -> insert(tx, tasks, null));
  }

  /**
   * Submits inside the caller's transaction (a system call of another service, or a task function's
   * own transaction): the task exists iff that transaction commits. The caller has checked rights.
   */
  public List<Long> submit(Tx tx, List<TaskSpec> tasks) throws SQLException {
    for (TaskSpec t : tasks) {
      check(t);
    }
    return insert(tx, tasks, null);
  }

  static void check(TaskSpec t) {
    if (!TaskSpec.PROCESS.equals(t.kind()) && !TaskSpec.FUNCTION.equals(t.kind())) {
      throw SyscallException.invalid("task kind must be process or function, not '" + t.kind() + "'");
    }
    if (t.name() == null || t.name().isBlank()) {
      throw SyscallException.invalid("a task needs a program or function name");
    }
    if (t.cpus() < 0 || t.memoryMb() < 0) {
      throw SyscallException.invalid("cpus and memory must not be negative");
    }
    if (t.maxAttempts() < 1) {
      throw SyscallException.invalid("max attempts must be at least 1, not " + t.maxAttempts());
    }
    if (t.backoff() != null && t.backoff().isNegative()) {
      throw SyscallException.invalid("backoff must not be negative");
    }
    if (t.timeout() != null && (t.timeout().isNegative() || t.timeout().isZero())) {
      throw SyscallException.invalid("timeout must be positive, not " + t.timeout());
    }
    Json.validate(t.argsJson());
    if (TaskSpec.PROCESS.equals(t.kind())) {
      Json.toStrings(t.argsJson());
      if (findProgram(t.name()) == null) {
        throw SyscallException.invalid("command not found: " + t.name());
      }
    }
  }

  /** The executable {@code program} names: a path, or the first match on PATH; null if none. */
  static Path findProgram(String program) {
    if (program.contains("/")) {
      Path p = Path.of(program);
      return Files.isRegularFile(p) && Files.isExecutable(p) ? p : null;
    }
    String path = System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin");
    for (String dir : path.split(File.pathSeparator)) {
      if (dir.isEmpty()) {
        continue;
      }
      Path p = Path.of(dir, program);
      if (Files.isRegularFile(p) && Files.isExecutable(p)) {
        return p;
      }
    }
    return null;
  }

  static List<Long> insert(Tx tx, List<TaskSpec> tasks, String cron) throws SQLException {
    Set<String> queues = new LinkedHashSet<>();
    for (TaskSpec t : tasks) {
      if (queues.add(t.queue()) && tx.queryOne(QUEUE_EXISTS, rs -> 1, t.queue()).isEmpty()) {
        throw SyscallException.notFound("no queue named '" + t.queue() + "'");
      }
    }
    int n = tasks.size();
    Object[][] cols = new Object[15][n];
    for (int i = 0; i < n; i++) {
      TaskSpec t = tasks.get(i);
      String state = "queued";
      String error = null;
      if (t.dependsOn() != null) {
        String dep = tx.queryOne(DEPENDENCY, rs -> rs.getString(1), t.dependsOn(), tx.session().admin(),
                tx.session().principalId())
            .orElseThrow(() -> SyscallException.notFound("no task " + t.dependsOn() + " to depend on"));
        switch (dep) {
          case "succeeded" -> state = "queued";
          case "failed", "cancelled", "timed_out" -> {
            state = "failed";
            error = "dependency " + t.dependsOn() + " did not succeed";
          }
          default -> state = "waiting";
        }
      }
      Object[] row = {t.queue(), t.kind(), t.name(), t.argsJson(), t.priority(), t.cpus(), t.memoryMb(),
          Json.map(t.labels()), state, t.maxAttempts(),
          t.backoff() == null ? 1000 : (int) Math.min(Integer.MAX_VALUE, t.backoff().toMillis()),
          t.timeout() == null ? null : (int) Math.min(Integer.MAX_VALUE, t.timeout().toMillis()),
          t.notBefore() == null ? null : t.notBefore().toString(), t.dependsOn(), error};
      for (int col = 0; col < row.length; col++) {
        cols[col][i] = row[col];
      }
    }
    String[] types = {"text", "text", "text", "text", "int", "int", "bigint", "text", "text", "int", "int", "int",
        "text", "bigint", "text"};
    Object[] args = new Object[17];
    args[0] = tx.session().principalId();
    args[1] = cron;
    var c = tx.connection();
    for (int col = 0; col < types.length; col++) {
      args[col + 2] = c.createArrayOf(types[col], cols[col]);
    }
    List<Long> ids = new ArrayList<>(tx.query(INSERT, rs -> rs.getLong(1), args));
    ids.sort(null); // identity values follow the insertion order, which is list order
    for (String q : queues) {
      tx.notify(CH_WORK, q);
    }
    return ids;
  }

  /** A task, if it exists and the caller may see it (its owner or an admin); else NOT_FOUND. */
  public TaskInfo get(Session s, long id) {
    return kernel.callChecked(s, "task.get", "task:" + id, true, tx -> visible(tx, s, id));
  }

  private static TaskInfo visible(Tx tx, Session s, long id) throws SQLException {
    TaskInfo t = tx.queryOne(GET, Scheduler::mapTask, id).orElse(null);
    if (t == null || (!s.admin() && !t.owner().equals(s.principal()))) {
      throw SyscallException.notFound("no task " + id);
    }
    return t;
  }

  /** Tasks matching {@code f} that the caller may see, newest first. */
  public List<TaskInfo> list(Session s, TaskFilter f) {
    if (f.state() != null && !STATES.contains(f.state())) {
      throw SyscallException.invalid("unknown state '" + f.state() + "': one of " + String.join(", ", STATES));
    }
    return kernel.callChecked(s, "task.list", "task:", true, tx -> tx.query(LIST, Scheduler::mapTask,
        f.state(), f.state(), f.queue(), f.queue(), f.node(), f.node(), f.owner(), f.owner(), s.admin(),
        s.principalId(), f.limit()));
  }

  /**
   * Cancels a task (its owner or an admin). A waiting or queued task is cancelled at once (and the
   * tasks depending on it fail); a running one is stopped by its node (a process gets SIGTERM, then
   * SIGKILL) and ends cancelled. Returns false if the task had already finished.
   */
  public boolean cancel(Session s, long id) {
    return kernel.callChecked(s, "task.cancel", "task:" + id, false, tx -> {
      visible(tx, s, id);
      var r = tx.queryOne(CANCEL, rs -> rs.getString(1), id).orElseThrow();
      switch (r) {
        case "queued", "waiting" -> {
          failDependents(tx, List.of(id));
          tx.notify(CH_DONE, String.valueOf(id));
          return true;
        }
        case "running" -> {
          tx.notify(CH_CANCEL, String.valueOf(id));
          return true;
        }
        default -> {
          return false;
        }
      }
    });
  }

  /**
   * Fails the tasks that (transitively) depend on {@code ids}, one level per statement: each statement
   * sees the tasks submitted by transactions it waited for, so a dependent committed meanwhile is not missed.
   */
  static void failDependents(Tx tx, List<Long> ids) throws SQLException {
    List<Long> frontier = ids;
    while (!frontier.isEmpty()) {
      Array a = tx.connection().createArrayOf("bigint", frontier.toArray());
      frontier = tx.query(FAIL_DEPENDENTS, rs -> rs.getLong(1), a);
    }
  }

  /**
   * Waits until task {@code id} has finished or {@code timeout} passed, and returns it as it is then.
   * Woken by the completion notification; re-checks every second in case one was missed.
   */
  public TaskInfo await(Session s, long id, Duration timeout) {
    listen();
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      var waiter = finishWaiters.computeIfAbsent(id, k -> new CompletableFuture<>());
      try {
        TaskInfo t = get(s, id);
        long left = deadline - System.nanoTime();
        if (t.finished() || left <= 0) {
          return t;
        }
        waiter.get(Math.min(left, TimeUnit.SECONDS.toNanos(1)), TimeUnit.NANOSECONDS);
      } catch (TimeoutException | ExecutionException e) {
        // re-check
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new SyscallException(SyscallException.Code.UNAVAILABLE, "interrupted while waiting for task " + id);
      } finally {
        finishWaiters.remove(id, waiter);
      }
    }
  }

  /** Subscribes to task completions, for {@link #await}. */
  void listen() {
    if (!listening) {
      synchronized (this) {
        if (!listening) {
          var l = NotificationListener.of(kernel.database());
          kernel.onClose(l);
          l.subscribe(CH_DONE, this::onDone);
          listening = true;
        }
      }
    }
  }

  private void onDone(String payload) {
    if (payload == null || payload.equals("*")) {
      finishWaiters.values().forEach(f -> f.complete(null));
      return;
    }
    for (String p : payload.split(",")) {
      var f = finishWaiters.get(Long.parseLong(p));
      if (f != null) {
        f.complete(null);
      }
    }
  }

  static TaskInfo mapTask(ResultSet rs) throws SQLException {
    return new TaskInfo(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
        rs.getString(6), rs.getString(7), rs.getInt(8), rs.getInt(9), rs.getLong(10), rs.getInt(11), rs.getInt(12),
        rs.getObject(13, UUID.class), (Integer) rs.getObject(14), rs.getString(15), rs.getString(16),
        (Long) rs.getObject(17), rs.getString(18), instant(rs, 19), instant(rs, 20), instant(rs, 21), instant(rs, 22));
  }

  static Instant instant(ResultSet rs, int i) throws SQLException {
    var t = rs.getTimestamp(i);
    return t == null ? null : t.toInstant();
  }

  // ---- cron -----------------------------------------------------------------------------------

  /**
   * Adds a cron schedule (ADMIN on {@code cron:<name>}): {@code task} is enqueued
   * at every tick of {@code spec} in {@code zone}, owned by the caller. Ticks missed while no node ran
   * are run once, not once per tick. INVALID_ARGUMENT for a wrong expression or zone, NOT_FOUND for
   * an unknown queue, ALREADY_EXISTS for a taken name.
   */
  public CronInfo addCron(Session s, String name, String spec, String zone, TaskSpec task) {
    if (name == null || !name.matches("[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")) {
      throw SyscallException.invalid("invalid schedule name '" + name + "'");
    }
    Cron cron = Cron.parse(spec, zone);
    check(task);
    Instant next = cron.next(ZonedDateTime.now(cron.zone())).toInstant();
    return kernel.call(s, "cron.add", Right.ADMIN, "cron:" + name, tx -> {
      if (tx.queryOne(QUEUE_EXISTS, rs -> 1, task.queue()).isEmpty()) {
        throw SyscallException.notFound("no queue named '" + task.queue() + "'");
      }
      tx.update(CRON_INSERT, name, s.principalId(), spec, cron.zone().getId(), task.queue(), task.kind(), task.name(),
          task.argsJson(), task.cpus(), task.memoryMb(), next);
      return tx.queryOne("SELECT " + CRON_COLUMNS + " FROM cron_schedules c JOIN principals p ON p.id = c.owner_id"
          + " WHERE c.name = ?", Scheduler::mapCron, name).orElseThrow();
    });
  }

  public List<CronInfo> crons(Session s) {
    return kernel.call(s, "cron.list", Right.READ, "cron:", tx -> tx.query("SELECT " + CRON_COLUMNS
        + " FROM cron_schedules c JOIN principals p ON p.id = c.owner_id ORDER BY c.name", Scheduler::mapCron));
  }

  /** Removes a schedule; NOT_FOUND if there is none by that name. Tasks it already enqueued stay. */
  public void removeCron(Session s, String name) {
    kernel.call(s, "cron.remove", Right.ADMIN, "cron:" + name, tx -> {
      if (tx.update("DELETE FROM cron_schedules WHERE name = ?", name) == 0) {
        throw SyscallException.notFound("no cron schedule named '" + name + "'");
      }
      return null;
    });
  }

  static CronInfo mapCron(ResultSet rs) throws SQLException {
    return new CronInfo(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
        rs.getString(6), rs.getString(7), rs.getString(8), instant(rs, 9), instant(rs, 10), (Long) rs.getObject(11));
  }
}
