package org.dbos.server.cli;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.scheduler.QueueInfo;
import org.dbos.kernel.scheduler.QueueSpec;
import org.dbos.kernel.scheduler.Scheduler;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "queue", mixinStandardHelpOptions = true, description = "Create, list and tune task queues.",
    subcommands = {QueueCommand.Create.class, QueueCommand.Ls.class, QueueCommand.Set.class})
final class QueueCommand {
  /** The settings both create and set take; on set, options not given keep their value. */
  static final class Settings {
    @Option(names = "--policy", description = "fifo, priority, least_loaded or locality.") String policy;
    @Option(names = "--concurrency", paramLabel = "N", description = "Running tasks in the cluster (0: no limit).")
    Integer concurrency;
    @Option(names = "--node-concurrency", paramLabel = "N", description = "Running tasks per node (0: no limit).")
    Integer nodeConcurrency;
    @Option(names = "--rate", paramLabel = "N/DURATION", description = "At most N starts per DURATION, e.g. 100/1s (0: none).")
    String rate;
    @Option(names = "--fair", negatable = true, description = "Share the queue fairly between owners.") Boolean fair;

    QueueSpec apply(QueueSpec q) {
      if (policy != null) {
        q = q.withPolicy(policy);
      }
      if (concurrency != null || nodeConcurrency != null) {
        q = q.withConcurrency(concurrency == null ? q.concurrency() : limit(concurrency, "--concurrency"),
            nodeConcurrency == null ? q.nodeConcurrency() : limit(nodeConcurrency, "--node-concurrency"));
      }
      if (rate != null) {
        if (rate.equals("0")) {
          q = q.withRateLimit(null, null);
        } else {
          String[] p = rate.split("/", 2);
          try {
            q = q.withRateLimit(Integer.parseInt(p[0]), UpCommand.positiveDuration(p[1], "--rate"));
          } catch (NumberFormatException | ArrayIndexOutOfBoundsException e) {
            throw SyscallException.invalid("--rate wants N/DURATION like 100/1s, got '" + rate + "'");
          }
        }
      }
      if (fair != null) {
        q = q.withFairShare(fair);
      }
      return q;
    }

    private static Integer limit(int v, String option) {
      if (v < 0) {
        throw SyscallException.invalid(option + " must not be negative, got " + v);
      }
      return v == 0 ? null : v;
    }
  }

  @Command(name = "create", mixinStandardHelpOptions = true, description = "Create a queue.")
  static final class Create implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(paramLabel = "NAME") String name;
    @Mixin Settings settings;

    @Override
    public Integer call() {
      QueueSpec q = settings.apply(QueueSpec.named(name));
      try (var c = client.connect()) {
        new Scheduler(c.kernel()).createQueue(c.session(), q);
        System.out.println("created queue " + name);
      }
      return 0;
    }
  }

  @Command(name = "set", mixinStandardHelpOptions = true, description = "Change a queue's settings.")
  static final class Set implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(paramLabel = "NAME") String name;
    @Mixin Settings settings;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        var s = new Scheduler(c.kernel());
        QueueInfo q = s.queue(c.session(), name)
            .orElseThrow(() -> SyscallException.notFound("no queue named '" + name + "'"));
        s.setQueue(c.session(), settings.apply(q.spec()));
        System.out.println("updated queue " + name);
      }
      return 0;
    }
  }

  @Command(name = "ls", mixinStandardHelpOptions = true, description = "List queues.")
  static final class Ls implements Callable<Integer> {
    @Mixin ClientOptions client;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        List<List<String>> rows = new ArrayList<>();
        for (QueueInfo q : new Scheduler(c.kernel()).queues(c.session())) {
          QueueSpec s = q.spec();
          rows.add(List.of(s.name(), s.policy(), str(s.concurrency()), str(s.nodeConcurrency()),
              s.rateLimit() == null ? "" : s.rateLimit() + "/" + fmt(s.ratePeriod()), s.fairShare() ? "yes" : "",
              String.valueOf(q.queued()), String.valueOf(q.running())));
        }
        Table.print(System.out, List.of("queue", "policy", "limit", "per node", "rate", "fair", "queued", "running"),
            rows);
      }
      return 0;
    }

    private static String str(Integer v) {
      return v == null ? "" : v.toString();
    }

    private static String fmt(Duration d) {
      return d.toMillis() % 1000 == 0 ? d.toSeconds() + "s" : d.toMillis() + "ms";
    }
  }
}
