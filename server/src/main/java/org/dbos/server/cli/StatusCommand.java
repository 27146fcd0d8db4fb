package org.dbos.server.cli;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.dbos.kernel.db.Database;
import org.dbos.kernel.node.ClusterStatus;
import org.dbos.kernel.node.NodeInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "status", mixinStandardHelpOptions = true,
    description = "Show the nodes, the database, the schema version and the largest OS tables.")
final class StatusCommand implements Callable<Integer> {
  @Mixin ClientOptions client;

  @Option(names = "--all", description = "Also list nodes that stopped or died long ago (default: the last 20).")
  boolean all;

  @Override
  public Integer call() {
    try (var c = client.connect()) {
      ClusterStatus s = ClusterStatus.read(c.kernel(), c.session(), all ? 10_000 : 20);
      System.out.printf("database  %s (PostgreSQL %s, %s)%n", Database.redact(c.kernel().database().url()),
          s.serverVersion(), Table.bytes(s.databaseBytes()));
      System.out.printf("schema    version %s%n%n", s.schemaVersion());
      long alive = s.nodes().stream().filter(n -> n.status().equals("alive")).count();
      System.out.printf("nodes     %d alive%n", alive);
      List<List<String>> rows = new ArrayList<>();
      Instant now = Instant.now();
      for (NodeInfo n : s.nodes()) {
        rows.add(List.of(n.id().toString(), n.status(), n.host(), String.valueOf(n.pid()),
            ago(n.startedAt(), now), ago(n.heartbeatAt(), now), n.cpus() + " cpu / " + n.memoryMb() + " MiB",
            n.httpAddress() == null ? "" : n.httpAddress(), n.dataDir()));
      }
      Table.print(System.out, List.of("node", "status", "host", "pid", "started", "heartbeat", "capacity", "http",
          "data dir"), rows);
      System.out.println();
      List<List<String>> tables = new ArrayList<>();
      for (var t : s.tables()) {
        tables.add(List.of(t.name(), String.valueOf(t.rows()), Table.bytes(t.bytes())));
      }
      Table.print(System.out, List.of("table", "rows (est.)", "size"), tables);
    }
    return 0;
  }

  static String ago(Instant t, Instant now) {
    if (t == null) {
      return "";
    }
    Duration d = Duration.between(t, now);
    if (d.isNegative()) {
      d = Duration.ZERO;
    }
    if (d.toSeconds() < 120) {
      return String.format("%.1fs ago", d.toMillis() / 1000.0);
    }
    if (d.toMinutes() < 120) {
      return d.toMinutes() + "m ago";
    }
    return d.toHours() + "h ago";
  }
}
