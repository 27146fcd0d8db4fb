package org.dbos.bench;

import java.nio.ByteBuffer;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * PostgreSQL's floor for anything that must survive a crash: bare single-row INSERTs into a table of
 * its own, each its own durable COMMIT (synchronous_commit on, and fsync must be on). One caller
 * waits for one WAL flush per commit; several callers at once share flushes (group commit). A
 * benchmark prints this beside its own figures, so its output shows what any design that commits
 * once per operation can reach on the same database in the same run.
 */
final class DurableCommits {
  private DurableCommits() {}

  /** Opens a connection to the database under test (closing it gives it back). */
  @FunctionalInterface
  interface Connections {
    Connection open() throws SQLException;
  }

  record Latency(double p50ms, double p99ms) {}

  /** Latency of one commit from one caller, over 1,000 commits after 100 unmeasured. */
  static Latency latency(Connections db) throws SQLException {
    try (Connection c = durable(db); var ps = c.prepareStatement("INSERT INTO bench_floor VALUES (?)")) {
      long[] t = new long[1000];
      for (int i = -100; i < t.length; i++) {
        long t0 = System.nanoTime();
        ps.setLong(1, i);
        ps.executeUpdate();
        if (i >= 0) {
          t[i] = System.nanoTime() - t0;
        }
      }
      Arrays.sort(t);
      return new Latency(ms(t, 0.50), ms(t, 0.99));
    }
  }

  /** Commits per second of {@code clients} callers at once, each on its own connection, for {@code time}. */
  static double perSecond(Connections db, int clients, Duration time) throws Exception {
    return perSecond(db, clients, time, 0);
  }

  /**
   * The same, each commit also storing {@code bytes} distinct random bytes beside its number (when
   * {@code bytes} > 0): PostgreSQL's floor for a small file made durable one per commit, the bytes
   * stored as DBFS stores a chunk's (out of line, not compressed) and nothing else, no key, no index.
   */
  static double perSecond(Connections db, int clients, Duration time, int bytes) throws Exception {
    List<Connection> connections = new ArrayList<>();
    try (ExecutorService pool = Executors.newFixedThreadPool(clients)) {
      for (int i = 0; i < clients; i++) {
        connections.add(durable(db));
      }
      var start = new CountDownLatch(1);
      var counts = new ArrayList<Future<Long>>();
      for (Connection c : connections) {
        counts.add(pool.submit(() -> {
          try (var ps = c.prepareStatement(bytes == 0 ? "INSERT INTO bench_floor VALUES (?)"
              : "INSERT INTO bench_floor_bytes VALUES (?, ?)")) {
            byte[] data = new byte[bytes];
            new Random(connections.indexOf(c)).nextBytes(data);
            start.await();
            long end = System.nanoTime() + time.toNanos();
            long n = 0;
            while (System.nanoTime() < end) {
              ps.setLong(1, n++);
              if (bytes > 0) {
                ByteBuffer.wrap(data).putLong(n); // distinct content, as each small file's
                ps.setBytes(2, data);
              }
              ps.executeUpdate();
            }
            return n;
          }
        }));
      }
      long t0 = System.nanoTime();
      start.countDown();
      long total = 0;
      for (Future<Long> n : counts) {
        total += n.get();
      }
      return total / ((System.nanoTime() - t0) / 1e9);
    } finally {
      for (Connection c : connections) {
        c.close();
      }
    }
  }

  /** A connection that commits each statement durably; refuses a server that does not flush at all. */
  private static Connection durable(Connections db) throws SQLException {
    Connection c = db.open();
    try (var st = c.createStatement()) {
      c.setAutoCommit(true);
      try (var rs = st.executeQuery("SHOW fsync")) {
        rs.next();
        if (!rs.getString(1).equals("on")) {
          throw new IllegalStateException("fsync is off: no durable floor to measure");
        }
      }
      st.execute("SET synchronous_commit = on");
      st.execute("CREATE TABLE IF NOT EXISTS bench_floor (n bigint)");
      st.execute("CREATE TABLE IF NOT EXISTS bench_floor_bytes (n bigint, data bytea STORAGE EXTERNAL)");
      return c;
    } catch (SQLException | RuntimeException e) {
      c.close();
      throw e;
    }
  }

  private static double ms(long[] sortedNanos, double q) {
    return sortedNanos[Math.min(sortedNanos.length - 1, (int) (q * sortedNanos.length))] / 1e6;
  }
}
