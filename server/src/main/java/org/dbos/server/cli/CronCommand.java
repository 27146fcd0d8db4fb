package org.dbos.server.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.dbos.kernel.scheduler.CronInfo;
import org.dbos.kernel.scheduler.Scheduler;
import org.dbos.kernel.scheduler.TaskSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "cron", mixinStandardHelpOptions = true, description = "Run commands on a schedule.",
    subcommands = {CronCommand.Add.class, CronCommand.Ls.class, CronCommand.Rm.class})
final class CronCommand {
  @Command(name = "add", mixinStandardHelpOptions = true,
      description = {"Add a schedule: five cron fields (minute hour day month weekday) or @hourly/@daily/….",
          "Ticks missed while no node ran fire once.", "Example: dbos cron add nightly '0 3 * * *' --tz Europe/Paris -- ./backup.sh"})
  static final class Add implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(index = "0", paramLabel = "NAME") String name;
    @Parameters(index = "1", paramLabel = "SPEC") String spec;
    @Parameters(index = "2..*", arity = "1..*", paramLabel = "COMMAND") List<String> command;
    @Option(names = "--tz", paramLabel = "ZONE", defaultValue = "UTC", description = "Time zone (default: UTC).") String zone;
    @Option(names = "--queue", defaultValue = "default") String queue;
    @Option(names = "--cpus", defaultValue = "1") int cpus;
    @Option(names = "--mem", paramLabel = "MB", defaultValue = "0") long memoryMb;

    @Override
    public Integer call() {
      TaskSpec task = TaskSpec.process(command).withQueue(queue).withResources(cpus, memoryMb);
      try (var c = client.connect()) {
        CronInfo ci = new Scheduler(c.kernel()).addCron(c.session(), name, spec, zone, task);
        System.out.println("added " + ci.name() + ", next run " + ci.nextRunAt());
      }
      return 0;
    }
  }

  @Command(name = "ls", mixinStandardHelpOptions = true, description = "List schedules.")
  static final class Ls implements Callable<Integer> {
    @Mixin ClientOptions client;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        List<List<String>> rows = new ArrayList<>();
        for (CronInfo ci : new Scheduler(c.kernel()).crons(c.session())) {
          rows.add(List.of(ci.name(), ci.spec(), ci.timeZone(), ci.queue(),
              ci.taskName() + " " + String.join(" ", TaskCommands.Ps.parseArgs(ci.argsJson())),
              String.valueOf(ci.nextRunAt()), ci.lastRunAt() == null ? "" : String.valueOf(ci.lastRunAt()),
              ci.lastTask() == null ? "" : String.valueOf(ci.lastTask())));
        }
        Table.print(System.out, List.of("name", "spec", "zone", "queue", "command", "next run", "last run", "last task"),
            rows);
      }
      return 0;
    }
  }

  @Command(name = "rm", mixinStandardHelpOptions = true, description = "Remove a schedule.")
  static final class Rm implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(paramLabel = "NAME") String name;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        new Scheduler(c.kernel()).removeCron(c.session(), name);
      }
      return 0;
    }
  }
}
