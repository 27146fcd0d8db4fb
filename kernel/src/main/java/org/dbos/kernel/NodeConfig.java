package org.dbos.kernel;

import io.micrometer.core.instrument.MeterRegistry;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * How to boot a node.
 *
 * @param dataDir           the node's directory (lock, credentials, the embedded cluster)
 * @param databaseUrl       an external PostgreSQL ≥ 15; null runs the embedded one in {@code dataDir}
 * @param databaseUser      user for the external database (null: from the URL)
 * @param databasePassword  password for the external database (null: from the URL)
 * @param pgPort            the embedded server's port; 0 keeps the port of the last start, else 15432
 * @param poolSize          database connections of this node
 * @param heartbeat         how often the node heartbeats
 * @param deadAfter         how long a silent node stays alive in others' eyes
 * @param httpAddress       the node's HTTP endpoint, recorded in the node table (may be null)
 * @param labels            free-form node labels (locality for the scheduler)
 * @param meters            where the kernel's metrics go
 * @param onFenced          what to do when the cluster declares this node dead while it runs
 * @param fsRetention       how long DBFS keeps old versions and removed names ({@code Retention})
 */
public record NodeConfig(Path dataDir, String databaseUrl, String databaseUser, String databasePassword, int pgPort,
                         int poolSize, Duration heartbeat, Duration deadAfter, String httpAddress,
                         Map<String, String> labels, MeterRegistry meters, Runnable onFenced,
                         Duration fsRetention) {
  public static final int DEFAULT_PG_PORT = 15432;
  /**
   * Enough connections for group commit to pay off (PostgreSQL flushes many commits per fsync) while
   * staying small for 2 cores; more only adds context switches.
   */
  public static final int DEFAULT_POOL = 24;

  public static NodeConfig defaults(Path dataDir) {
    return new NodeConfig(dataDir, null, null, null, 0, DEFAULT_POOL, Duration.ofSeconds(1), Duration.ofSeconds(5),
        null, Map.of(), null, () -> {}, org.dbos.kernel.files.Retention.DEFAULT);
  }

  public NodeConfig withDatabase(String url, String user, String password) {
    return new NodeConfig(dataDir, url, user, password, pgPort, poolSize, heartbeat, deadAfter, httpAddress, labels,
        meters, onFenced, fsRetention);
  }

  public NodeConfig withPgPort(int port) {
    return new NodeConfig(dataDir, databaseUrl, databaseUser, databasePassword, port, poolSize, heartbeat, deadAfter,
        httpAddress, labels, meters, onFenced, fsRetention);
  }

  public NodeConfig withHeartbeat(Duration every, Duration deadAfterSilence) {
    return new NodeConfig(dataDir, databaseUrl, databaseUser, databasePassword, pgPort, poolSize, every,
        deadAfterSilence, httpAddress, labels, meters, onFenced, fsRetention);
  }

  public NodeConfig withHttpAddress(String address) {
    return new NodeConfig(dataDir, databaseUrl, databaseUser, databasePassword, pgPort, poolSize, heartbeat, deadAfter,
        address, labels, meters, onFenced, fsRetention);
  }

  public NodeConfig withMeters(MeterRegistry registry) {
    return new NodeConfig(dataDir, databaseUrl, databaseUser, databasePassword, pgPort, poolSize, heartbeat, deadAfter,
        httpAddress, labels, registry, onFenced, fsRetention);
  }

  public NodeConfig withPoolSize(int size) {
    return new NodeConfig(dataDir, databaseUrl, databaseUser, databasePassword, pgPort, size, heartbeat, deadAfter,
        httpAddress, labels, meters, onFenced, fsRetention);
  }

  public NodeConfig withLabels(Map<String, String> nodeLabels) {
    return new NodeConfig(dataDir, databaseUrl, databaseUser, databasePassword, pgPort, poolSize, heartbeat, deadAfter,
        httpAddress, nodeLabels, meters, onFenced, fsRetention);
  }

  public NodeConfig withOnFenced(Runnable action) {
    return new NodeConfig(dataDir, databaseUrl, databaseUser, databasePassword, pgPort, poolSize, heartbeat, deadAfter,
        httpAddress, labels, meters, action, fsRetention);
  }

  public NodeConfig withFsRetention(Duration keep) {
    return new NodeConfig(dataDir, databaseUrl, databaseUser, databasePassword, pgPort, poolSize, heartbeat, deadAfter,
        httpAddress, labels, meters, onFenced, keep);
  }
}
