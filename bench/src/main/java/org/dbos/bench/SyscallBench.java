package org.dbos.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Node;
import org.dbos.kernel.NodeConfig;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;

/**
 * The cost of the system-call mechanism: an empty system call (session and right check, audit record,
 * durable commit) against the cheapest durable write there is, a bare single-row INSERT in autocommit,
 * on the same embedded PostgreSQL, the same pool, in the same run, at 1, 8 and 32 concurrent callers.
 * Then the same for a call that does work: a body inserting one row, against that INSERT in a plain
 * transaction (BEGIN, INSERT, COMMIT).
 *
 * <p>Usage: {@code java -cp ... org.dbos.bench.SyscallBench [seconds-per-point]}
 */
public final class SyscallBench {
  interface Op {
    void run() throws Exception;
  }

  record Point(String name, int threads, long ops, double seconds, long[] latenciesNanos) {
    double throughput() {
      return ops / seconds;
    }

    double percentileMs(double p) {
      if (latenciesNanos.length == 0) {
        return 0;
      }
      return latenciesNanos[(int) Math.min(latenciesNanos.length - 1, Math.floor(p * latenciesNanos.length))] / 1e6;
    }
  }

  public static void main(String[] args) throws Exception {
    int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 10;
    Path dir = Files.createTempDirectory("dbos-bench-syscall-");
    int[] concurrency = {1, 8, 32};
    try (Node node = Node.boot(NodeConfig.defaults(dir).withPgPort(freePort()).withPoolSize(32))) {
      Kernel k = node.kernel();
      k.database().transaction(c -> c.createStatement().executeUpdate(
          "CREATE TABLE bench_rows (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v bigint NOT NULL)"));
      Session admin = k.openSession(Kernel.ADMIN, Duration.ofHours(1));
      k.principals().create(admin, "bench", "service", null, null, null, false);
      k.principals().grant(admin, "bench", Right.WRITE, "bench:");
      Session caller = k.openSession("bench", Duration.ofHours(1));

      System.out.printf("empty system call vs bare INSERT, PostgreSQL 18 embedded, fsync on, %d s per point%n", seconds);
      System.out.printf("%-8s %12s %12s %9s %9s %9s %9s %8s%n", "callers", "insert/s", "syscall/s", "ins p50", "sys p50",
          "ins p99", "sys p99", "ratio");
      for (int threads : concurrency) {
        Point insert = measure("insert", threads, seconds, () -> {
          try (Connection c = k.database().connection();
               PreparedStatement ps = c.prepareStatement("INSERT INTO bench_rows (v) VALUES (?)")) {
            ps.setLong(1, System.nanoTime());
            ps.executeUpdate();
          }
        });
        Point syscall = measure("syscall", threads, seconds,
            () -> k.call(caller, "bench.noop", Right.WRITE, "bench:noop", tx -> null));
        System.out.printf("%-8d %12.0f %12.0f %8.2fms %8.2fms %8.2fms %8.2fms %7.2fx%n", threads, insert.throughput(),
            syscall.throughput(), insert.percentileMs(0.5), syscall.percentileMs(0.5), insert.percentileMs(0.99),
            syscall.percentileMs(0.99), insert.throughput() / syscall.throughput());
      }
      System.out.println("ratio = bare INSERT throughput / system call throughput (cost of a call in INSERTs; target <= 1.5)");

      System.out.printf("%nsystem call whose body INSERTs one row vs the same INSERT in BEGIN ... COMMIT%n");
      System.out.printf("%-8s %12s %12s %9s %9s %9s %9s %8s%n", "callers", "tx/s", "syscall/s", "tx p50", "sys p50",
          "tx p99", "sys p99", "ratio");
      for (int threads : concurrency) {
        Point plain = measure("tx", threads, seconds, () -> {
          try (Connection c = k.database().connection()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO bench_rows (v) VALUES (?)")) {
              ps.setLong(1, System.nanoTime());
              ps.executeUpdate();
            }
            c.commit();
            c.setAutoCommit(true);
          }
        });
        Point syscall = measure("syscall", threads, seconds, () -> k.call(caller, "bench.insert", Right.WRITE,
            "bench:rows", tx -> tx.update("INSERT INTO bench_rows (v) VALUES (?)", System.nanoTime())));
        System.out.printf("%-8d %12.0f %12.0f %8.2fms %8.2fms %8.2fms %8.2fms %7.2fx%n", threads, plain.throughput(),
            syscall.throughput(), plain.percentileMs(0.5), syscall.percentileMs(0.5), plain.percentileMs(0.99),
            syscall.percentileMs(0.99), plain.throughput() / syscall.throughput());
      }
      System.out.println("ratio = plain transaction throughput / system call throughput (the mechanism's cost on a call doing work)");
    }
  }

  static Point measure(String name, int threads, int seconds, Op op) throws Exception {
    // Warm up: statement caches, JIT, connections.
    run(threads, Duration.ofSeconds(Math.max(1, seconds / 5)), op);
    Point p = run(threads, Duration.ofSeconds(seconds), op);
    return new Point(name, p.threads(), p.ops(), p.seconds(), p.latenciesNanos());
  }

  private static Point run(int threads, Duration d, Op op) throws Exception {
    var stop = new AtomicBoolean();
    var start = new CountDownLatch(1);
    List<long[]> perThread = new ArrayList<>();
    long[] counts = new long[threads];
    List<Thread> workers = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      long[] lat = new long[2_000_000];
      perThread.add(lat);
      int idx = t;
      workers.add(Thread.ofPlatform().start(() -> {
        try {
          start.await();
          int n = 0;
          while (!stop.get()) {
            long t0 = System.nanoTime();
            op.run();
            if (n < lat.length) {
              lat[n] = System.nanoTime() - t0;
            }
            n++;
          }
          counts[idx] = n;
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      }));
    }
    long t0 = System.nanoTime();
    start.countDown();
    Thread.sleep(d.toMillis());
    stop.set(true);
    for (Thread w : workers) {
      w.join();
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    long total = Arrays.stream(counts).sum();
    long[] all = new long[(int) Math.min(total, Integer.MAX_VALUE - 8)];
    int pos = 0;
    for (int t = 0; t < threads; t++) {
      int n = (int) Math.min(counts[t], perThread.get(t).length);
      System.arraycopy(perThread.get(t), 0, all, pos, n);
      pos += n;
    }
    long[] lat = Arrays.copyOf(all, pos);
    Arrays.sort(lat);
    return new Point("", threads, total, secs, lat);
  }

  static int freePort() throws java.io.IOException {
    try (var s = new java.net.ServerSocket(0)) {
      return s.getLocalPort();
    }
  }
}
