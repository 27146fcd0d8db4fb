package org.dbos.kernel.db;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.testing.TestDatabase;
import org.junit.jupiter.api.Test;

class DatabaseTest {
  /**
   * The shape of FUSE after a burst of concurrent writers: four threads that each held a connection of
   * their own, then one serial stream of transactions carried by those threads in turn. The stream must
   * stay on one PostgreSQL backend (HikariCP alone would give each thread its own last connection back).
   * Also fails when a HikariCP upgrade moves the internals {@link Database#connection} relies on.
   */
  @Test
  void aSerialStreamCarriedByManyThreadsKeepsOneConnection() throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    int threads = 4;
    List<ExecutorService> carriers = new ArrayList<>();
    for (int i = 0; i < threads; i++) {
      carriers.add(Executors.newSingleThreadExecutor());
    }
    try (Database d = Database.connect(db.url(), db.user(), db.password(), 8, null)) {
      var allHold = new CountDownLatch(threads);
      Set<Integer> concurrent = new HashSet<>();
      var burst = new ArrayList<java.util.concurrent.Future<?>>();
      for (ExecutorService carrier : carriers) {
        burst.add(carrier.submit(() -> {
          try (Connection c = d.connection()) {
            int pid = backendPid(c);
            synchronized (concurrent) {
              concurrent.add(pid);
            }
            allHold.countDown();
            allHold.await(10, TimeUnit.SECONDS);
          }
          return null;
        }));
      }
      for (var f : burst) {
        f.get(30, TimeUnit.SECONDS);
      }
      assertEquals(threads, concurrent.size(), "concurrent callers get one connection each");

      Set<Integer> serial = new HashSet<>();
      for (int round = 0; round < 3 * threads; round++) {
        serial.add(carriers.get(round % threads).submit(() -> {
          try (Connection c = d.connection()) {
            return backendPid(c);
          }
        }).get(30, TimeUnit.SECONDS));
      }
      assertEquals(1, serial.size(), "backends used by one serial stream: " + serial);
    } finally {
      carriers.forEach(ExecutorService::shutdownNow);
    }
  }

  private static int backendPid(Connection c) throws Exception {
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT pg_backend_pid()")) {
      rs.next();
      return rs.getInt(1);
    }
  }
}
