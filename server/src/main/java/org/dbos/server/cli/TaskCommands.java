package org.dbos.server.cli;

import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Callable;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.files.FileSystem;
import org.dbos.kernel.scheduler.Scheduler;
import org.dbos.kernel.scheduler.TaskFilter;
import org.dbos.kernel.scheduler.TaskInfo;
import org.dbos.kernel.scheduler.TaskOutput;
import org.dbos.kernel.scheduler.TaskSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** `dbos run`, `ps`, `logs`, `kill`: tasks from the command line. */
final class TaskCommands {
  private TaskCommands() {}

  @Command(name = "run", mixinStandardHelpOptions = true,
      description = {"Submit a command as a task; prints its id.", "Example: dbos run --cpus 2 -- sh -c 'echo hi'"})
  static final class Run implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Option(names = "--cpus", paramLabel = "N", defaultValue = "1", description = "CPU slots it needs (default: 1).")
    int cpus;
    @Option(names = "--mem", paramLabel = "MB", defaultValue = "0", description = "Memory it needs, in MiB (default: 0).")
    long memoryMb;
    @Option(names = "--queue", paramLabel = "Q", defaultValue = "default", description = "Queue (default: default).")
    String queue;
    @Option(names = "--priority", paramLabel = "P", defaultValue = "0", description = "Higher first on a priority queue.")
    int priority;
    @Option(names = "--after", paramLabel = "TASK", description = "Run only after this task succeeded (fail if it fails).")
    Long after;
    @Option(names = "--delay", paramLabel = "DURATION", description = "Do not start before this much time passed.")
    String delay;
    @Option(names = "--timeout", paramLabel = "DURATION", description = "Stop the run (SIGTERM, then SIGKILL) after this long.")
    String timeout;
    @Option(names = "--retries", paramLabel = "N", defaultValue = "0", description = "Retry a failed run up to N times.")
    int retries;
    @Option(names = "--backoff", paramLabel = "DURATION", defaultValue = "1s", description = "First retry delay, doubling (default: 1s).")
    String backoff;
    @Option(names = "--wait", description = "Wait for the task, print its output, exit with its exit code.")
    boolean await;
    @Parameters(paramLabel = "COMMAND", arity = "1..*", description = "The command and its arguments (after --).")
    List<String> command;

    @Override
    public Integer call() {
      if (retries < 0) {
        throw SyscallException.invalid("--retries must not be negative");
      }
      TaskSpec spec = TaskSpec.process(command).withQueue(queue).withResources(cpus, memoryMb).withPriority(priority)
          .withDependsOn(after).withRetries(retries + 1, UpCommand.parseDuration(backoff, "--backoff"));
      if (delay != null) {
        spec = spec.withNotBefore(Instant.now().plus(UpCommand.parseDuration(delay, "--delay")));
      }
      if (timeout != null) {
        spec = spec.withTimeout(UpCommand.positiveDuration(timeout, "--timeout"));
      }
      try (var c = client.connect()) {
        var s = new Scheduler(c.kernel());
        long id = s.submit(c.session(), spec);
        System.out.println(id);
        System.out.flush();
        if (!await) {
          return 0;
        }
        TaskInfo t = Logs.follow(s, FileSystem.of(c.kernel()), c.session(), id);
        return t.exitCode() != null ? t.exitCode() : t.state().equals("succeeded") ? 0 : 1;
      }
    }
  }

  @Command(name = "ps", mixinStandardHelpOptions = true, description = "List tasks, newest first.")
  static final class Ps implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Option(names = "--state", description = "waiting, queued, running, succeeded, failed, cancelled or timed_out.")
    String state;
    @Option(names = "--queue") String queue;
    @Option(names = "--node", paramLabel = "NODE_ID") UUID node;
    @Option(names = "--owner", paramLabel = "PRINCIPAL") String owner;
    @Option(names = {"-n", "--limit"}, defaultValue = "50", description = "At most this many (default: 50).") int limit;

    @Override
    public Integer call() {
      if (limit < 1) {
        throw SyscallException.invalid("--limit must be positive");
      }
      try (var c = client.connect()) {
        List<List<String>> rows = new ArrayList<>();
        Instant now = Instant.now();
        for (TaskInfo t : new Scheduler(c.kernel()).list(c.session(), new TaskFilter(state, queue, node, owner, limit))) {
          rows.add(List.of(String.valueOf(t.id()), t.state(), t.exitCode() == null ? "" : String.valueOf(t.exitCode()),
              t.queue(), t.owner(), t.nodeId() == null ? "" : t.nodeId().toString().substring(0, 8),
              t.attempts() + "/" + t.maxAttempts(), StatusCommand.ago(t.createdAt(), now), describe(t)));
        }
        Table.print(System.out, List.of("id", "state", "exit", "queue", "owner", "node", "tries", "created", "command"),
            rows);
      }
      return 0;
    }

    static String describe(TaskInfo t) {
      String d = t.kind().equals(TaskSpec.PROCESS) ? t.name() + " " + String.join(" ", parseArgs(t.argsJson()))
          : t.name() + "(" + t.argsJson() + ")";
      return d.length() > 60 ? d.substring(0, 57) + "..." : d;
    }

    static List<String> parseArgs(String json) {
      try {
        return new com.fasterxml.jackson.databind.ObjectMapper().readValue(json,
            new com.fasterxml.jackson.core.type.TypeReference<List<String>>() {});
      } catch (Exception e) {
        return List.of(json);
      }
    }
  }

  @Command(name = "logs", mixinStandardHelpOptions = true,
      description = "Print a task's stdout and stderr (the DBFS files /tasks/TASK/stdout and /tasks/TASK/stderr).")
  static final class Logs implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(paramLabel = "TASK") long task;
    @Option(names = {"-f", "--follow"}, description = "Keep printing until the task finishes.") boolean follow;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        var s = new Scheduler(c.kernel());
        var fs = FileSystem.of(c.kernel());
        s.get(c.session(), task); // NOT_FOUND for a task the caller cannot see
        if (follow) {
          follow(s, fs, c.session(), task);
        } else {
          print(fs, c.session(), task, new long[2]);
        }
      }
      return 0;
    }

    /** Prints what the task's files hold beyond {@code printed} (stdout's and stderr's bytes so far). */
    static void print(FileSystem fs, Session session, long task, long[] printed) {
      for (int i = 0; i < 2; i++) {
        String stream = i == 0 ? TaskOutput.STDOUT : TaskOutput.STDERR;
        PrintStream out = i == 0 ? System.out : System.err;
        byte[] b;
        while ((b = TaskOutput.read(fs, session, task, stream, printed[i], 1 << 20)).length > 0) {
          out.write(b, 0, b.length);
          printed[i] += b.length;
        }
        out.flush();
      }
    }

    /** Prints output as it arrives until the task has finished; returns the finished task. */
    static TaskInfo follow(Scheduler s, FileSystem fs, Session session, long task) {
      long[] printed = new long[2];
      while (true) {
        TaskInfo t = s.await(session, task, Duration.ofMillis(200));
        print(fs, session, task, printed);
        if (t.finished()) {
          return t;
        }
      }
    }
  }

  @Command(name = "kill", mixinStandardHelpOptions = true,
      description = "Cancel a task: a queued one at once, a running process with SIGTERM, then SIGKILL.")
  static final class Kill implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(paramLabel = "TASK") long task;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        var s = new Scheduler(c.kernel());
        if (s.cancel(c.session(), task)) {
          System.out.println("cancelling task " + task);
          return 0;
        }
        System.err.println("dbos: task " + task + " already finished (" + s.get(c.session(), task).state() + ")");
        return 1;
      }
    }
  }
}
