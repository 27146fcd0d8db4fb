package org.dbos.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.testing.TestDatabase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kill -9 of a node in the middle of a stream of system calls: after restart on the same data
 * directory (PostgreSQL crash recovery included), every call that returned is there, no call is half
 * applied, and the audit log holds exactly one 'ok' record per applied call.
 */
class CrashTest {
  @TempDir Path dir;

  @Test
  void sigkillLosesNoAcknowledgedCallAndAppliesNoneByHalf() throws Exception {
    int port = TestDatabase.freePort();
    Path data = dir.resolve("node");
    for (int round = 1; round <= 2; round++) {
      Process child = new ProcessBuilder(javaBin(), "--enable-native-access=ALL-UNNAMED", "-cp",
          System.getProperty("java.class.path"), CrashWorker.class.getName(), data.toString(), String.valueOf(port))
          .redirectError(ProcessBuilder.Redirect.INHERIT).start();
      var out = new BufferedReader(new InputStreamReader(child.getInputStream()));
      long acked = 0;
      String line;
      try {
        assertEquals("ready", out.readLine());
        // Let it run a while, then kill it at an arbitrary point mid-stream.
        while ((line = out.readLine()) != null) {
          acked = Long.parseLong(line.substring(3));
          if (acked >= 200 + round * 37L) {
            break;
          }
        }
      } finally {
        child.toHandle().destroyForcibly(); // SIGKILL; unlike Process.destroy it leaves our pipe readable
      }
      assertTrue(child.waitFor(30, TimeUnit.SECONDS));
      while ((line = out.readLine()) != null) { // lines already written before the kill
        if (line.startsWith("ok ")) {
          acked = Long.parseLong(line.substring(3));
        }
      }

      try (Node node = Node.boot(NodeConfig.defaults(data).withPgPort(port).withPoolSize(2))) {
        long finalAcked = acked;
        node.kernel().database().transaction(c -> {
          long a = one(c, "SELECT count(*) FROM crash_a");
          long b = one(c, "SELECT count(*) FROM crash_b");
          long max = one(c, "SELECT coalesce(max(n), 0) FROM crash_a");
          long ok = one(c, "SELECT count(*) FROM audit_log WHERE call = 'crash.put' AND outcome = 'ok'");
          long gaps = one(c, "SELECT count(*) FROM generate_series(1, " + finalAcked + ") g WHERE g NOT IN (SELECT n FROM crash_a)");
          assertEquals(0, gaps, "an acknowledged call was lost");
          assertEquals(a, b, "a call was applied by half");
          assertEquals(a, max, "calls are applied in order, without holes");
          assertTrue(a >= finalAcked && a <= finalAcked + 1, "at most the one in-flight call beyond the last ack");
          assertEquals(a, ok, "one audit record per applied call");
          return null;
        });
        // The next round starts numbering from 1 again, on the same (recovered) database.
        node.kernel().database().transaction(c -> c.createStatement().executeUpdate(
            "DELETE FROM crash_b; DELETE FROM crash_a; DELETE FROM audit_log WHERE call = 'crash.put'"));
      }
    }
  }

  static long one(java.sql.Connection c, String sql) throws java.sql.SQLException {
    try (var rs = c.createStatement().executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  static String javaBin() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }
}
