package org.dbos.kernel.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.IntStream;
import org.dbos.kernel.Node;
import org.dbos.kernel.Session;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.Test;

/**
 * Three nodes on one database run 10,000 tasks (functions and processes); one of them, a child JVM, is killed with
 * SIGKILL mid-run. Every task must finish exactly once: the side-effect counter equals the number of
 * function tasks, and each task's committed effect comes from the one lease that completed it.
 */
class SchedulerCrashTest {
  static final int FUNCTIONS = 9900;
  static final int PROCESSES = 100;

  @Test
  void sigkilledNodeLosesNoTaskAndRunsNoneTwice() throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    Node a = TestNode.boot(db);
    Node b = TestNode.boot(db);
    Process child = null;
    try {
      a.kernel().database().transaction(c -> c.createStatement().executeUpdate("""
          CREATE TABLE counter (n bigint NOT NULL); INSERT INTO counter VALUES (0);
          CREATE TABLE effects (task_id bigint NOT NULL, node uuid NOT NULL, attempt int NOT NULL)"""));
      var cfg = new Worker.Config(2, 32, 128, true, Duration.ofSeconds(1), Duration.ofSeconds(1));
      Worker.start(a, CrashWorkerMain.functions(a.id()), cfg);
      Worker.start(b, CrashWorkerMain.functions(b.id()), cfg);

      String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
      child = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
          CrashWorkerMain.class.getName(), db.url(), db.user(), db.password())
          .redirectError(ProcessBuilder.Redirect.INHERIT).start();
      var out = new BufferedReader(new InputStreamReader(child.getInputStream()));
      UUID childId = null;
      for (String line; (line = out.readLine()) != null; ) {
        if (line.startsWith("ready ")) {
          childId = UUID.fromString(line.substring(6).trim());
          break;
        }
      }
      assertTrue(childId != null, "child node did not start");

      Scheduler s = new Scheduler(a.kernel());
      Session admin = a.kernel().login("admin", a.dataDirectory().adminCredential().orElseThrow());
      var specs = IntStream.range(0, FUNCTIONS).mapToObj(i -> TaskSpec.function("incr", null)
          .withRetries(5, Duration.ofMillis(10))).toList();
      var ids = new ArrayList<Long>();
      for (int i = 0; i < FUNCTIONS; i += 500) {
        ids.addAll(s.submitAll(admin, specs.subList(i, Math.min(FUNCTIONS, i + 500))));
      }
      ids.addAll(s.submitAll(admin, IntStream.range(0, PROCESSES).mapToObj(i -> TaskSpec.process(List.of("true"))
          .withRetries(5, Duration.ofMillis(10))).toList()));

      // kill the child while it holds leases, after it has completed some work
      final UUID victim = childId;
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (count(a, "SELECT count(*) FROM tasks WHERE node_id = ? AND state = 'succeeded'", victim) < 100
          || count(a, "SELECT count(*) FROM tasks WHERE node_id = ? AND state = 'running'", victim) == 0) {
        assertTrue(System.nanoTime() < deadline, "child never ran tasks");
        Thread.sleep(2);
      }
      long held = count(a, "SELECT count(*) FROM tasks WHERE node_id = ? AND state = 'running'", victim);
      new ProcessBuilder("kill", "-9", String.valueOf(child.pid())).start().waitFor();
      child.waitFor();

      while (count(a, "SELECT count(*) FROM tasks WHERE state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')") > 0) {
        assertTrue(System.nanoTime() < deadline, "tasks did not finish after the crash");
        Thread.sleep(20);
      }
      assertEquals(FUNCTIONS + PROCESSES, count(a, "SELECT count(*) FROM tasks WHERE state = 'succeeded'"));
      assertEquals(FUNCTIONS, count(a, "SELECT n FROM counter"));
      assertEquals(FUNCTIONS, count(a, "SELECT count(*) FROM effects"));
      assertEquals(FUNCTIONS, count(a, "SELECT count(DISTINCT task_id) FROM effects"));
      // the effect that committed is the one of the lease that completed the task
      assertEquals(0, count(a, """
          SELECT count(*) FROM effects e JOIN tasks t ON t.id = e.task_id
          WHERE e.node <> t.node_id OR e.attempt <> t.attempts"""));
      assertEquals("dead", a.kernel().database().transaction(c -> {
        var ps = c.prepareStatement("SELECT status FROM nodes WHERE id = ?");
        ps.setObject(1, victim);
        var rs = ps.executeQuery();
        rs.next();
        return rs.getString(1);
      }));
      long retried = count(a, "SELECT count(*) FROM tasks WHERE attempts > 1");
      assertTrue(retried > 0, "no task of the dead node was re-run");
      long byChild = count(a, "SELECT count(*) FROM tasks WHERE node_id = ?", victim);
      System.out.printf("crash test: %d tasks, child completed %d, about %d held at SIGKILL, %d re-run elsewhere%n",
          FUNCTIONS + PROCESSES, byChild, held, retried);
    } finally {
      if (child != null) {
        child.destroyForcibly();
      }
      b.close();
      a.close();
    }
  }

  static long count(Node n, String sql, Object... args) {
    return n.kernel().database().transaction(c -> {
      try (var ps = c.prepareStatement(sql)) {
        org.dbos.kernel.Tx.bind(ps, args);
        var rs = ps.executeQuery();
        rs.next();
        return rs.getLong(1);
      }
    });
  }
}
