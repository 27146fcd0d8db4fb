package org.dbos.kernel.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import org.dbos.kernel.Node;
import org.dbos.kernel.Session;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.Test;

/**
 * A node declared dead while it still runs (it stalled, or was cut off) must stop its processes, so
 * the task does not run on two nodes at once once the cluster gives it to another.
 */
class FencingTest {
  @Test
  void aFencedNodeKillsItsProcessesAndAnotherTakesTheTaskOver() throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    Node a = TestNode.boot(db);
    Node b = null;
    try {
      Worker.start(a);
      Scheduler s = new Scheduler(a.kernel());
      Session admin = a.kernel().login("admin", a.dataDirectory().adminCredential().orElseThrow());
      long id = s.submit(admin, TaskSpec.process(List.of("sh", "-c", "echo pid $$; exec sleep 60"))
          .withRetries(2, Duration.ZERO));
      long pid = awaitPid(s, admin, id, 0);
      assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));

      // the cluster declares a dead while its process runs (what another node does when a's heartbeats lapse)
      a.kernel().database().transaction(c -> {
        var ps = c.prepareStatement("UPDATE nodes SET status = 'dead' WHERE id = ?");
        ps.setObject(1, a.id());
        return ps.executeUpdate();
      });
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      while (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
        assertTrue(System.nanoTime() < deadline, "the fenced node's process still runs");
        Thread.sleep(20);
      }
      assertTrue(a.membership().fenced());

      // a live worker takes the orphaned run over, under a new lease
      b = TestNode.boot(db);
      Worker.start(b);
      long pid2 = awaitPid(s, admin, id, pid);
      TaskInfo t = s.get(admin, id);
      assertEquals("running", t.state());
      assertEquals(b.id(), t.nodeId());
      assertEquals(2, t.attempts());
      assertTrue(pid2 != pid);
      s.cancel(admin, id);
      assertEquals("cancelled", s.await(admin, id, Duration.ofSeconds(15)).state());
    } finally {
      if (b != null) {
        b.close();
      }
      a.close();
    }
  }

  /** Waits for the task to print a pid other than {@code not}. */
  static long awaitPid(Scheduler s, Session admin, long id, long not) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
    while (System.nanoTime() < deadline) {
      byte[] out = TaskOutput.read(org.dbos.kernel.files.FileSystem.of(s.kernel()), admin, id, TaskOutput.STDOUT, 0, 1 << 20);
      for (String line : new String(out, StandardCharsets.UTF_8).split("\n")) {
        if (line.startsWith("pid ") && Long.parseLong(line.substring(4).trim()) != not) {
          return Long.parseLong(line.substring(4).trim());
        }
      }
      Thread.sleep(20);
    }
    throw new AssertionError("task " + id + " printed no new pid");
  }
}
