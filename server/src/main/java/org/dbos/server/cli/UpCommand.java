package org.dbos.server.cli;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.rolling.RollingFileAppender;
import ch.qos.logback.core.rolling.SizeAndTimeBasedRollingPolicy;
import ch.qos.logback.core.util.FileSize;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.dbos.kernel.DataDirectory;
import org.dbos.kernel.NodeConfig;
import org.dbos.kernel.SyscallException;
import org.dbos.server.Server;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "up", mixinStandardHelpOptions = true,
    description = {"Start a DBOS node in the foreground (Ctrl-C stops it cleanly).",
        "Without --db it runs an embedded PostgreSQL 18 in DIR/pg; with --db it joins an existing database."})
final class UpCommand implements Callable<Integer> {
  @Mixin DatabaseOptions db;

  @Option(names = "--pg-port", paramLabel = "PORT", defaultValue = "0",
      description = "Port of the embedded PostgreSQL (default: as last time, else " + NodeConfig.DEFAULT_PG_PORT + ").")
  int pgPort;

  @Option(names = "--http", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:7070",
      description = "Health, readiness and metrics endpoint (default: ${DEFAULT-VALUE}; port 0 picks one).")
  String http;

  @Option(names = "--etcd", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:2379",
      description = "Serve the etcd v3 API here (default: ${DEFAULT-VALUE}; 'off' to disable).")
  String etcd;

  @Option(names = "--mount", paramLabel = "MOUNTPOINT", description = "Also mount DBFS here (FUSE).")
  Path mount;

  @Option(names = "--worker", negatable = true, defaultValue = "true", fallbackValue = "true",
      description = "Run this node's share of scheduled tasks (default: on; --no-worker for none).")
  boolean worker;

  @Option(names = "--heartbeat", paramLabel = "DURATION", defaultValue = "1s",
      description = "Heartbeat interval (default: ${DEFAULT-VALUE}).")
  String heartbeat;

  @Option(names = "--dead-after", paramLabel = "DURATION", defaultValue = "5s",
      description = "Silence after which other nodes declare a node dead (default: ${DEFAULT-VALUE}).")
  String deadAfter;

  @Option(names = "--fs-retention", paramLabel = "DURATION", defaultValue = "7d",
      description = "How long DBFS keeps old file versions and removed names to restore from (default: ${DEFAULT-VALUE}).")
  String fsRetention;

  @Option(names = "--label", paramLabel = "KEY=VALUE", description = "A node label (repeatable), for locality.")
  Map<String, String> labels = new LinkedHashMap<>();

  @Option(names = "--pool", paramLabel = "N", defaultValue = "" + NodeConfig.DEFAULT_POOL,
      description = "Database connections of this node (default: ${DEFAULT-VALUE}).")
  int pool;

  @Override
  public Integer call() throws InterruptedException {
    long t0 = System.nanoTime();
    String[] hostPort = splitHostPort(http, "--http");
    String[] etcdHostPort = etcd.equals("off") ? null : splitHostPort(etcd, "--etcd");
    Duration beat = positiveDuration(heartbeat, "--heartbeat");
    Duration dead = positiveDuration(deadAfter, "--dead-after");
    if (dead.compareTo(beat.multipliedBy(2)) < 0) {
      throw SyscallException.invalid("--dead-after must be at least twice --heartbeat");
    }
    Duration retention = positiveDuration(fsRetention, "--fs-retention");
    if (pool < 2) {
      throw SyscallException.invalid("--pool must be at least 2");
    }
    Path dataDir = db.dataDir;
    String password = db.databaseUrl == null ? null : db.password();
    var fenced = new CountDownLatch(1);
    NodeConfig cfg = NodeConfig.defaults(dataDir)
        .withDatabase(db.databaseUrl, db.databaseUser, password)
        .withPgPort(pgPort)
        .withPoolSize(pool)
        .withHeartbeat(beat, dead)
        .withLabels(labels)
        .withFsRetention(retention)
        .withOnFenced(fenced::countDown);
    logToDataDirectory(DataDirectory.logDir(dataDir));
    Server server = Server.start(cfg, new Server.Endpoints(hostPort[0], Integer.parseInt(hostPort[1]),
        etcdHostPort == null ? null : etcdHostPort[0], etcdHostPort == null ? 0 : Integer.parseInt(etcdHostPort[1]),
        mount, worker));
    var stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      server.close();
      stopped.countDown();
    }, "dbos-shutdown"));
    printBanner(server, (System.nanoTime() - t0) / 1_000_000);
    fenced.await();
    System.err.println("dbos: this node was declared dead by the cluster (it stalled longer than --dead-after); exiting");
    return 1;
  }

  private void printBanner(Server server, long ms) {
    var node = server.node();
    var dir = node.dataDirectory();
    String relDir = Path.of("").toAbsolutePath().relativize(dir.root()).toString();
    String shown = relDir.isEmpty() || relDir.startsWith("..") ? dir.root().toString() : "./" + relDir;
    System.out.printf("DBOS node %s up in %.1f s%n", node.id(), ms / 1000.0);
    System.out.printf("  database  %s?user=%s%n", node.databaseUrl(), node.embedded() ? "postgres" : "…");
    if (node.embedded()) {
      System.out.printf("            embedded PostgreSQL in %s/pg, password in %s/db-password%n", shown, shown);
    }
    System.out.printf("  schema    version %s%n", node.schemaVersion());
    System.out.printf("  http      http://%s  (/health /ready /metrics)%n", server.httpAddress());
    if (server.etcdAddress() != null) {
      System.out.printf("  etcd      %s  (etcd v3 API: etcdctl --endpoints=%s …)%n", server.etcdAddress(),
          server.etcdAddress());
    }
    if (server.mountpoint() != null) {
      System.out.printf("  files     DBFS mounted at %s%n", server.mountpoint().toAbsolutePath());
    }
    if (node.bootstrappedAdminSecret().isPresent()) {
      System.out.printf("  admin     new principal 'admin': password in %s/admin.credential%n", shown);
    }
    if (node.embedded()) {
      System.out.printf("Join from another node: dbos up --data-dir OTHER_DIR --db '%s?user=postgres' "
          + "--db-password-file %s/db-password --http 127.0.0.1:0 --etcd 127.0.0.1:0%n", node.databaseUrl(), shown);
    }
    System.out.println("Try: dbos status   dbos sql \"select * from audit\"   (Ctrl-C stops the node)");
    System.out.flush();
  }

  /** Adds a JSON log file (rolled by size) beside the console log. */
  private static void logToDataDirectory(Path dir) {
    var ctx = (LoggerContext) LoggerFactory.getILoggerFactory();
    var encoder = new JsonEncoder();
    encoder.setContext(ctx);
    encoder.start();
    var appender = new RollingFileAppender<ILoggingEvent>();
    appender.setContext(ctx);
    appender.setName("json");
    appender.setFile(dir.resolve("dbos.json").toString());
    var policy = new SizeAndTimeBasedRollingPolicy<ILoggingEvent>();
    policy.setContext(ctx);
    policy.setParent(appender);
    policy.setFileNamePattern(dir.resolve("dbos.%d{yyyy-MM-dd}.%i.json").toString());
    policy.setMaxFileSize(FileSize.valueOf("50MB"));
    policy.setMaxHistory(7);
    policy.start();
    appender.setRollingPolicy(policy);
    appender.setEncoder(encoder);
    appender.start();
    ctx.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).addAppender(appender);
  }

  static String[] splitHostPort(String value, String option) {
    int i = value.lastIndexOf(':');
    if (i <= 0 || !value.substring(i + 1).matches("\\d{1,5}") || Integer.parseInt(value.substring(i + 1)) > 65535) {
      throw SyscallException.invalid(option + " wants HOST:PORT, got '" + value + "'");
    }
    return new String[] {value.substring(0, i), value.substring(i + 1)};
  }

  /** A duration of zero or more: 500ms, 5s, 2m, 1h, 7d, or ISO-8601 (PT5S); INVALID_ARGUMENT otherwise. */
  static Duration parseDuration(String value, String option) {
    var m = java.util.regex.Pattern.compile("(\\d+)(ms|s|m|h|d)").matcher(value.trim());
    try {
      if (m.matches()) {
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2)) {
          case "ms" -> Duration.ofMillis(n);
          case "s" -> Duration.ofSeconds(n);
          case "m" -> Duration.ofMinutes(n);
          case "h" -> Duration.ofHours(n);
          default -> Duration.ofDays(n);
        };
      }
      Duration d = Duration.parse(value);
      if (d.isNegative()) {
        throw new IllegalArgumentException();
      }
      return d;
    } catch (RuntimeException e) {
      throw SyscallException.invalid(option + " wants a duration like 500ms, 5s, 2m or 7d, got '" + value + "'");
    }
  }

  /** {@link #parseDuration}, refusing zero: for periods and timeouts, where zero means nothing sensible. */
  static Duration positiveDuration(String value, String option) {
    Duration d = parseDuration(value, option);
    if (d.isZero()) {
      throw SyscallException.invalid(option + " wants a positive duration like 500ms, 5s, 2m or 7d, got '" + value + "'");
    }
    return d;
  }
}
