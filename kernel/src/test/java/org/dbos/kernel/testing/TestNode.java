package org.dbos.kernel.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import org.dbos.kernel.Node;
import org.dbos.kernel.NodeConfig;

/** Nodes for tests: each on a fresh database of the shared test PostgreSQL, with a temporary data directory. */
public final class TestNode {
  private TestNode() {}

  static {
    sweepStale();
  }

  /**
   * Deletes the data directories of test JVMs that were killed (crash tests SIGKILL their children, whose
   * shutdown hooks then never run): those older than ten minutes whose node lock nobody holds.
   */
  private static void sweepStale() {
    Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
    long before = System.currentTimeMillis() - 600_000;
    try (var dirs = Files.newDirectoryStream(tmp, "dbos-test-node-*")) {
      for (Path dir : dirs) {
        Path lock = dir.resolve("node.lock");
        if (Files.getLastModifiedTime(dir).toMillis() > before) {
          continue;
        }
        boolean free = true;
        if (Files.exists(lock)) {
          try (var ch = FileChannel.open(lock, StandardOpenOption.WRITE); var held = ch.tryLock()) {
            free = held != null;
          } catch (IOException | OverlappingFileLockException e) {
            free = false;
          }
        }
        if (free) {
          TestDatabase.deleteQuietly(dir);
        }
      }
    } catch (IOException ignored) {
      // best effort
    }
  }

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
