package org.dbos.bench;

import com.github.kagkarlsson.scheduler.task.TaskInstance;
import com.github.kagkarlsson.scheduler.task.helper.OneTimeTask;
import com.github.kagkarlsson.scheduler.task.helper.Tasks;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import org.dbos.kernel.Node;
import org.dbos.kernel.Session;
import org.dbos.kernel.messages.Mailboxes;
import org.dbos.kernel.scheduler.Functions;
import org.dbos.kernel.scheduler.Scheduler;
import org.dbos.kernel.scheduler.TaskSpec;
import org.dbos.kernel.scheduler.Worker;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;

/**
 * The scheduler and messages against their peers, in one run on one PostgreSQL (durable commits):
 * <ol>
 *   <li>no-op function tasks, enqueue → run → complete, 1 and 2 nodes, DBOS vs db-scheduler;
 *   <li>dispatch latency on an idle system (committed enqueue → function starts);
 *   <li>messages: round-trip latency and throughput for 64 B / 1 KiB / 8 KiB, single and batched,
 *       DBOS mailboxes vs a plain grpc-java ping-pong over loopback.
 * </ol>
 * Run: {@code java -cp ... org.dbos.bench.SchedulerBench [tasks] [tasks,idle,messages]} (see docs/BENCHMARKS.md).
 */
public final class SchedulerBench {
  private static final int BATCH = 500;

  record Throughput(String name, int nodes, int tasks, double perSecond, double dispatchP50, double dispatchP99,
                    double completeP50, double completeP99) {}

  public static void main(String[] args) throws Exception {
    // the figures, not the nodes' and db-scheduler's logs
    ((ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME))
        .setLevel(ch.qos.logback.classic.Level.ERROR);
    int tasks = args.length > 0 ? Integer.parseInt(args[0]) : 20_000;
    String parts = args.length > 1 ? args[1] : "tasks,idle,messages";
    System.out.printf("SchedulerBench: %d tasks per run, %d cores, Java %s%n", tasks,
        Runtime.getRuntime().availableProcessors(), Runtime.version());
    if (parts.contains("tasks")) {
      tasks(tasks);
    }
    if (parts.contains("idle")) {
      idleDispatch(300);
    }
    if (parts.contains("messages")) {
      messages();
    }
  }

  static void tasks(int tasks) throws Exception {
    var results = new ArrayList<Throughput>();
    // warm-up runs (JIT, PostgreSQL caches), not reported
    dbos(1, tasks / 4);
    dbScheduler(1, tasks / 4);
    for (int nodes = 1; nodes <= 2; nodes++) {
      results.add(dbos(nodes, tasks));
      results.add(dbScheduler(nodes, tasks));
    }
    System.out.println();
    System.out.println("== no-op tasks, enqueue -> run -> complete (latency in ms, under full load) ==");
    System.out.printf("%-14s %5s %8s %10s %12s %12s %12s %12s%n", "system", "nodes", "tasks", "tasks/s",
        "dispatch p50", "dispatch p99", "complete p50", "complete p99");
    for (Throughput t : results) {
      System.out.printf("%-14s %5d %8d %10.0f %12.1f %12.1f %12s %12s%n", t.name(), t.nodes(), t.tasks(),
          t.perSecond(), t.dispatchP50(), t.dispatchP99(), fmt(t.completeP50()), fmt(t.completeP99()));
    }
    for (int nodes = 1; nodes <= 2; nodes++) {
      int n = nodes;
      double d = results.stream().filter(r -> r.name().equals("dbos") && r.nodes() == n).findFirst().orElseThrow().perSecond();
      double k = results.stream().filter(r -> r.name().equals("db-scheduler") && r.nodes() == n).findFirst().orElseThrow().perSecond();
      System.out.printf("ratio dbos / db-scheduler, %d node(s): %.2fx%n", nodes, d / k);
    }
  }

  static String fmt(double v) {
    return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.1f", v);
  }

  // ---- DBOS tasks ------------------------------------------------------------------------------

  static Throughput dbos(int nodeCount, int tasks) throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    long[] dispatch = new long[tasks];
    var started = new AtomicInteger();
    List<Node> nodes = new ArrayList<>();
    try {
      for (int i = 0; i < nodeCount; i++) {
        Node node = Node.boot(TestNode.config(db).withPoolSize(16));
        nodes.add(node);
        var fns = new Functions().register("noop", ctx -> {
          long enq = Long.parseLong(ctx.input());
          dispatch[started.getAndIncrement() % tasks] = System.nanoTime() - enq;
          return null;
        });
        Worker.start(node, fns, new Worker.Config(2, 128, 512, false, Duration.ofSeconds(1), Duration.ofSeconds(1)));
      }
      Node first = nodes.getFirst();
      Session admin = first.kernel().login("admin", first.dataDirectory().adminCredential().orElseThrow());
      var s = new Scheduler(first.kernel());
      long t0 = System.nanoTime();
      var producers = Executors.newFixedThreadPool(2);
      var futures = new ArrayList<Future<?>>();
      for (int p = 0; p < 2; p++) {
        int part = p;
        futures.add(producers.submit(() -> {
          for (int i = part * BATCH; i < tasks; i += 2 * BATCH) {
            String now = String.valueOf(System.nanoTime());
            s.submitAll(admin, IntStream.range(i, Math.min(tasks, i + BATCH))
                .mapToObj(k -> TaskSpec.function("noop", now)).toList());
          }
          return null;
        }));
      }
      for (var f : futures) {
        f.get();
      }
      producers.shutdown();
      while (count(first, "SELECT (SELECT count(*) FROM tasks WHERE state = 'queued')"
          + " + (SELECT count(*) FROM tasks WHERE state = 'running')") > 0) {
        Thread.sleep(5);
      }
      double secs = (System.nanoTime() - t0) / 1e9;
      double[] complete = first.kernel().database().transaction(c -> {
        var rs = c.createStatement().executeQuery("""
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)),
                   count(*) FILTER (WHERE state = 'succeeded')
            FROM tasks""");
        rs.next();
        return new double[] {rs.getDouble(1) * 1000, rs.getDouble(2) * 1000, rs.getDouble(3)};
      });
      if ((int) complete[2] != tasks) {
        throw new IllegalStateException("only " + complete[2] + " of " + tasks + " tasks succeeded");
      }
      Arrays.sort(dispatch);
      var r = new Throughput("dbos", nodeCount, tasks, tasks / secs, pct(dispatch, 0.5), pct(dispatch, 0.99),
          complete[0], complete[1]);
      System.out.printf("dbos          %d node(s): %,d tasks in %.2f s = %,.0f tasks/s%n", nodeCount, tasks, secs, r.perSecond());
      return r;
    } finally {
      for (int i = nodes.size() - 1; i >= 0; i--) {
        nodes.get(i).close();
      }
    }
  }

  static double pct(long[] sortedNanos, double q) {
    return sortedNanos[(int) Math.min(sortedNanos.length - 1, Math.floor(q * sortedNanos.length))] / 1e6;
  }

  static long count(Node n, String sql) {
    return n.kernel().database().transaction(c -> {
      var rs = c.createStatement().executeQuery(sql);
      rs.next();
      return rs.getLong(1);
    });
  }

  // ---- db-scheduler ---------------------------------------------------------------------------

  private static final String DB_SCHEDULER_TABLE = """
      CREATE TABLE scheduled_tasks (
        task_name text NOT NULL, task_instance text NOT NULL, task_data bytea,
        execution_time timestamptz NOT NULL, picked boolean NOT NULL, picked_by text,
        last_success timestamptz, last_failure timestamptz, consecutive_failures int,
        last_heartbeat timestamptz, version bigint NOT NULL, priority smallint,
        PRIMARY KEY (task_name, task_instance));
      CREATE INDEX execution_time_idx ON scheduled_tasks (execution_time);
      CREATE INDEX last_heartbeat_idx ON scheduled_tasks (last_heartbeat);
      CREATE INDEX priority_execution_time_idx ON scheduled_tasks (priority DESC, execution_time ASC)""";

  /**
   * db-scheduler with its high-throughput settings (lock-and-fetch polling with SKIP LOCKED, immediate
   * execution, 100 ms polling) and the same number of worker connections per node as DBOS.
   */
  static Throughput dbScheduler(int nodeCount, int tasks) throws Exception {
    TestDatabase.Url db = TestDatabase.empty();
    long[] dispatch = new long[tasks];
    var started = new AtomicInteger();
    var done = new AtomicInteger();
    OneTimeTask<Long> noop = Tasks.oneTime("noop", Long.class).execute((inst, ctx) -> {
      dispatch[started.getAndIncrement() % tasks] = System.nanoTime() - inst.getData();
      done.incrementAndGet();
    });
    var pools = new ArrayList<HikariDataSource>();
    var schedulers = new ArrayList<com.github.kagkarlsson.scheduler.Scheduler>();
    try {
      for (int i = 0; i < nodeCount; i++) {
        var cfg = new HikariConfig();
        cfg.setJdbcUrl(db.url());
        cfg.setUsername(db.user());
        cfg.setPassword(db.password());
        cfg.setMaximumPoolSize(16);
        var pool = new HikariDataSource(cfg);
        pools.add(pool);
        if (i == 0) {
          try (var c = pool.getConnection()) {
            c.createStatement().execute(DB_SCHEDULER_TABLE);
          }
        }
        var sch = com.github.kagkarlsson.scheduler.Scheduler.create(pool, noop)
            .threads(16).pollUsingLockAndFetch(0.5, 1.0).pollingInterval(Duration.ofMillis(100))
            .enableImmediateExecution().schedulerName(new com.github.kagkarlsson.scheduler.SchedulerName.Fixed("n" + i))
            .registerShutdownHook().build();
        sch.start();
        schedulers.add(sch);
      }
      var client = schedulers.getFirst();
      long t0 = System.nanoTime();
      var producers = Executors.newFixedThreadPool(2);
      var futures = new ArrayList<Future<?>>();
      for (int p = 0; p < 2; p++) {
        int part = p;
        futures.add(producers.submit(() -> {
          for (int i = part * BATCH; i < tasks; i += 2 * BATCH) {
            long now = System.nanoTime();
            List<TaskInstance<?>> batch = new ArrayList<>();
            for (int k = i; k < Math.min(tasks, i + BATCH); k++) {
              batch.add(noop.instance("t" + k, now));
            }
            client.scheduleBatch(batch, Instant.now());
          }
          return null;
        }));
      }
      for (var f : futures) {
        f.get();
      }
      producers.shutdown();
      // done counts handler runs; the run is complete when their rows are deleted too
      while (done.get() < tasks || rows(pools.getFirst()) > 0) {
        Thread.sleep(5);
      }
      double secs = (System.nanoTime() - t0) / 1e9;
      Arrays.sort(dispatch);
      var r = new Throughput("db-scheduler", nodeCount, tasks, tasks / secs, pct(dispatch, 0.5), pct(dispatch, 0.99),
          Double.NaN, Double.NaN);
      System.out.printf("db-scheduler  %d node(s): %,d tasks in %.2f s = %,.0f tasks/s%n", nodeCount, tasks, secs, r.perSecond());
      return r;
    } finally {
      schedulers.forEach(x -> x.stop());
      pools.forEach(HikariDataSource::close);
    }
  }

  static long rows(HikariDataSource pool) throws Exception {
    try (var c = pool.getConnection()) {
      var rs = c.createStatement().executeQuery("SELECT count(*) FROM scheduled_tasks");
      rs.next();
      return rs.getLong(1);
    }
  }

  // ---- idle dispatch ----------------------------------------------------------------------------

  static void idleDispatch(int samples) throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    var startedAt = new AtomicLong();
    var latch = new AtomicReferenceLatch();
    try (Node node = Node.boot(TestNode.config(db).withPoolSize(16))) {
      var fns = new Functions().register("mark", ctx -> {
        startedAt.set(System.nanoTime());
        latch.release();
        return null;
      });
      Worker.start(node, fns, Worker.Config.defaults());
      Session admin = node.kernel().login("admin", node.dataDirectory().adminCredential().orElseThrow());
      var s = new Scheduler(node.kernel());
      long[] dispatch = new long[samples];
      long[] submit = new long[samples];
      for (int i = -50; i < samples; i++) {
        if (i == 0) {
          // measure from a collected heap: the boot's garbage (migrations, class loading, the login's
          // password hashing) would otherwise be collected during the samples, on a starved CPU
          System.gc();
        }
        CountDownLatch l = latch.arm();
        long t0 = System.nanoTime();
        s.submit(admin, TaskSpec.function("mark", null));
        long t1 = System.nanoTime();
        if (!l.await(5, TimeUnit.SECONDS)) {
          throw new IllegalStateException("task did not start within 5 s");
        }
        if (i >= 0) {
          submit[i] = t1 - t0;
          dispatch[i] = startedAt.get() - t1;
        }
        Thread.sleep(5); // idle between samples: the worker is back waiting on LISTEN
      }
      Arrays.sort(dispatch);
      Arrays.sort(submit);
      System.out.println();
      System.out.println("== idle dispatch: committed enqueue -> function starts, " + samples + " samples ==");
      System.out.printf("dispatch p50 %.2f ms, p99 %.2f ms (enqueue call itself: p50 %.2f ms, p99 %.2f ms)%n",
          pct(dispatch, 0.5), pct(dispatch, 0.99), pct(submit, 0.5), pct(submit, 0.99));
    }
  }

  /** A latch re-armed per sample. */
  static final class AtomicReferenceLatch {
    private volatile CountDownLatch latch = new CountDownLatch(1);

    CountDownLatch arm() {
      latch = new CountDownLatch(1);
      return latch;
    }

    void release() {
      latch.countDown();
    }
  }

  // ---- messages ---------------------------------------------------------------------------------

  static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  };
  static final MethodDescriptor<byte[], byte[]> ECHO = MethodDescriptor.<byte[], byte[]>newBuilder()
      .setType(MethodDescriptor.MethodType.UNARY).setFullMethodName("bench.Ping/Echo")
      .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
  static final MethodDescriptor<byte[], byte[]> SEND = MethodDescriptor.<byte[], byte[]>newBuilder()
      .setType(MethodDescriptor.MethodType.UNARY).setFullMethodName("bench.Ping/Send")
      .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();

  static void messages() throws Exception {
    int[] sizes = {64, 1024, 8192};
    var rows = new ArrayList<String>();
    double floor = 0;
    Server grpc = NettyServerBuilder.forPort(0).addService(ServerServiceDefinition.builder("bench.Ping")
        .addMethod(ECHO, ServerCalls.asyncUnaryCall((req, obs) -> {
          obs.onNext(req);
          obs.onCompleted();
        }))
        .addMethod(SEND, ServerCalls.asyncUnaryCall((req, obs) -> {
          obs.onNext(new byte[0]);
          obs.onCompleted();
        })).build()).build().start();
    ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", grpc.getPort()).usePlaintext().build();
    for (int i = 0; i < 5_000; i++) { // JIT and Netty warm before the first size, as DBOS's JDBC path is by then
      ClientCalls.blockingUnaryCall(ch, ECHO, CallOptions.DEFAULT, new byte[64]);
    }
    TestDatabase.Url db = TestDatabase.fresh();
    try (Node node = Node.boot(TestNode.config(db).withPoolSize(16))) {
      Session admin = node.kernel().login("admin", node.dataDirectory().adminCredential().orElseThrow());
      var mail = new Mailboxes(node.kernel());
      for (int size : sizes) {
        byte[] payload = new byte[size];
        Arrays.fill(payload, (byte) 'x');
        // round trip: A sends to B's mailbox, B takes it and answers to A's in one transaction
        String a = "a" + size;
        String b = "b" + size;
        mail.create(admin, a, null);
        mail.create(admin, b, null);
        int trips = 300;
        var echo = Executors.newSingleThreadExecutor();
        echo.submit(() -> {
          for (int i = 0; i < trips + 30; i++) {
            mail.recv(admin, b, 1, Duration.ofSeconds(10), (tx, m) -> mail.send(tx, a, m.getFirst().body(), null));
          }
          return null;
        });
        long[] rtt = new long[trips];
        for (int i = -30; i < trips; i++) {
          long t0 = System.nanoTime();
          mail.send(admin, b, payload, null);
          mail.recv(admin, a, 1, Duration.ofSeconds(10));
          if (i >= 0) {
            rtt[i] = System.nanoTime() - t0;
          }
        }
        echo.shutdown();
        Arrays.sort(rtt);
        long[] grtt = new long[trips];
        for (int i = -200; i < trips; i++) {
          long t0 = System.nanoTime();
          ClientCalls.blockingUnaryCall(ch, ECHO, CallOptions.DEFAULT, payload);
          if (i >= 0) {
            grtt[i] = System.nanoTime() - t0;
          }
        }
        Arrays.sort(grtt);
        if (size == sizes[0]) {
          floor = DurableCommits.latency(node.kernel().database()::connection).p50ms();
        }
        double single = dbosThroughput(mail, admin, "s" + size, payload, 1, 3000);
        double batched = dbosThroughput(mail, admin, "m" + size, payload, 64, 40_000);
        double gSingle = grpcThroughput(ch, payload, false, 20_000);
        double gBatched = grpcThroughput(ch, payload, true, 100_000);
        rows.add(String.format(Locale.ROOT, "%6d B  rtt p50 %6.2f ms (p99 %6.2f) vs gRPC %5.2f ms (p99 %5.2f) = %5.1fx | "
                + "msgs/s single %,8.0f vs gRPC %,8.0f | batched %,8.0f vs gRPC %,8.0f = %.2fx",
            size, pct(rtt, 0.5), pct(rtt, 0.99), pct(grtt, 0.5), pct(grtt, 0.99), pct(rtt, 0.5) / pct(grtt, 0.5),
            single, gSingle, batched, gBatched, batched / gBatched));
      }
    } finally {
      ch.shutdownNow();
      grpc.shutdownNow();
    }
    System.out.println();
    System.out.println("== messages: DBOS mailboxes (durable, exactly once) vs grpc-java over loopback ==");
    System.out.println("(single: 4 senders, one message per send; batched: 4 senders, 64 messages per send;"
        + " gRPC single: 4 blocking callers, batched: 4 callers x 64 calls in flight)");
    rows.forEach(System.out::println);
    System.out.printf(Locale.ROOT, "durable floor: one single-row commit p50 %.2f ms; a round trip that survives a crash"
        + " commits at least twice (the send, then the take with its reply): >= %.2f ms%n", floor, 2 * floor);
  }

  /** 4 sender threads, 2 receivers; returns messages per second from the first send to the last receive. */
  static double dbosThroughput(Mailboxes mail, Session admin, String box, byte[] payload, int perSend, int total)
      throws Exception {
    mail.create(admin, box, null);
    var received = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(6);
    try {
      long t0 = System.nanoTime();
      var futures = new ArrayList<Future<?>>();
      for (int r = 0; r < 2; r++) {
        futures.add(pool.submit(() -> {
          while (received.get() < total) {
            received.addAndGet(mail.recv(admin, box, 256, Duration.ofMillis(100)).size());
          }
          return null;
        }));
      }
      for (int s = 0; s < 4; s++) {
        futures.add(pool.submit(() -> {
          List<byte[]> batch = java.util.Collections.nCopies(perSend, payload);
          for (int i = 0; i < total / 4; i += perSend) {
            if (perSend == 1) {
              mail.send(admin, box, payload, null);
            } else {
              mail.sendBatch(admin, box, batch);
            }
          }
          return null;
        }));
      }
      for (var f : futures) {
        f.get();
      }
      return received.get() / ((System.nanoTime() - t0) / 1e9);
    } finally {
      pool.shutdownNow();
    }
  }

  static double grpcThroughput(ManagedChannel ch, byte[] payload, boolean pipelined, int total) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      long t0 = System.nanoTime();
      var futures = new ArrayList<Future<?>>();
      for (int s = 0; s < 4; s++) {
        futures.add(pool.submit(() -> {
          var window = new Semaphore(64);
          var inFlight = new ArrayList<com.google.common.util.concurrent.ListenableFuture<byte[]>>();
          for (int i = 0; i < total / 4; i++) {
            if (pipelined) {
              window.acquire();
              var f = ClientCalls.futureUnaryCall(ch.newCall(SEND, CallOptions.DEFAULT), payload);
              f.addListener(window::release, Runnable::run);
              inFlight.add(f);
            } else {
              ClientCalls.blockingUnaryCall(ch, SEND, CallOptions.DEFAULT, payload);
            }
          }
          for (var f : inFlight) {
            f.get();
          }
          return null;
        }));
      }
      for (var f : futures) {
        f.get();
      }
      return total / ((System.nanoTime() - t0) / 1e9);
    } finally {
      pool.shutdownNow();
    }
  }
}
