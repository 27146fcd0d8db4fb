package org.dbos.kernel.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.dbos.kernel.Node;
import org.dbos.kernel.NodeConfig;

/** Nodes for tests: each on a fresh database of the shared test PostgreSQL, with a temporary data directory. */
public final class TestNode {
  private TestNode() {}

  /** A node on a fresh database. */
  public static Node boot() {
    return boot(TestDatabase.fresh());
  }

  /** A node on {@code db} (several nodes may share one database). */
  public static Node boot(TestDatabase.Url db) {
    return Node.boot(config(db));
  }

  public static NodeConfig config(TestDatabase.Url db) {
    try {
      Path dir = Files.createTempDirectory("dbos-test-node-");
      // its admin credential and database password must not outlive the test run
      Runtime.getRuntime().addShutdownHook(new Thread(() -> TestDatabase.deleteQuietly(dir)));
      return NodeConfig.defaults(dir).withDatabase(db.url(), db.user(), db.password()).withPoolSize(8)
          .withHeartbeat(Duration.ofMillis(200), Duration.ofSeconds(2));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
