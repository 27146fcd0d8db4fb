package org.dbos.kernel.scheduler;

import java.time.Duration;
import java.util.UUID;
import org.dbos.kernel.Node;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;

/** A node with a worker in its own JVM, for tests that SIGKILL it: {@code main(url, user, password)}. */
public final class CrashWorkerMain {
  private CrashWorkerMain() {}

  /** The side-effect function of the crash test: bumps a counter and records who ran it, in the task's transaction. */
  static Functions functions(UUID node) {
    return new Functions().register("incr", ctx -> {
      // one statement: every batch holds the hot counter row until it commits, so round trips add up
      ctx.tx().update("WITH bump AS (UPDATE counter SET n = n + 1)"
          + " INSERT INTO effects (task_id, node, attempt) VALUES (?, ?, ?)", ctx.taskId(), node, ctx.attempt());
      return null;
    });
  }

  public static void main(String[] args) throws Exception {
    Node node = Node.boot(TestNode.config(new TestDatabase.Url(args[0], args[1], args[2], "child")));
    Worker.start(node, functions(node.id()), new Worker.Config(4, 32, 128, true, Duration.ofSeconds(1), Duration.ofSeconds(1)));
    System.out.println("ready " + node.id());
    System.out.flush();
    Thread.sleep(Long.MAX_VALUE);
  }
}
