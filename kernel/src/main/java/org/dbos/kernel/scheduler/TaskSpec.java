package org.dbos.kernel.scheduler;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * What to run. Build with {@link #process} or {@link #function} and the {@code with…} methods.
 *
 * @param kind        "process" (an OS command) or "function" (a Java function registered on the workers)
 * @param name        the program (process) or the function's registered name
 * @param argsJson    a JSON array of strings (process argv after the program) or the function's JSON input
 * @param queue       the queue; must exist
 * @param priority    higher runs first on a "priority" queue
 * @param cpus        CPU slots the task holds on its node while it runs (≥ 0)
 * @param memoryMb    memory it holds on its node (≥ 0)
 * @param labels      it runs only on nodes whose labels contain these (on a "locality" queue)
 * @param maxAttempts runs at most this often (≥ 1): failures, timeouts and lost nodes consume attempts
 * @param backoff     delay before the first retry; doubles per retry
 * @param timeout     a run longer than this is stopped and counts as timed out (null: none)
 * @param notBefore   not started before this instant (null: now)
 * @param dependsOn   runs only after this task succeeded; fails if it fails (null: none)
 */
public record TaskSpec(String kind, String name, String argsJson, String queue, int priority, int cpus, long memoryMb,
                       Map<String, String> labels, int maxAttempts, Duration backoff, Duration timeout, Instant notBefore,
                       Long dependsOn) {
  public static final String PROCESS = "process";
  public static final String FUNCTION = "function";

  /** An OS command: {@code argv[0]} is the program, found on the PATH if it has no slash. One CPU by default. */
  public static TaskSpec process(List<String> argv) {
    if (argv == null || argv.isEmpty()) {
      throw org.dbos.kernel.SyscallException.invalid("no command given");
    }
    return new TaskSpec(PROCESS, argv.getFirst(), Json.strings(argv.subList(1, argv.size())), "default", 0, 1, 0,
        Map.of(), 1, Duration.ofSeconds(1), null, null, null);
  }

  /** A registered Java function with a JSON input (null: {@code null}). Needs no CPU slot by default. */
  public static TaskSpec function(String name, String inputJson) {
    return new TaskSpec(FUNCTION, name, inputJson == null ? "null" : inputJson, "default", 0, 0, 0, Map.of(), 1,
        Duration.ofSeconds(1), null, null, null);
  }

  public TaskSpec withQueue(String q) {
    return new TaskSpec(kind, name, argsJson, q, priority, cpus, memoryMb, labels, maxAttempts, backoff, timeout, notBefore, dependsOn);
  }

  public TaskSpec withPriority(int p) {
    return new TaskSpec(kind, name, argsJson, queue, p, cpus, memoryMb, labels, maxAttempts, backoff, timeout, notBefore, dependsOn);
  }

  public TaskSpec withResources(int c, long memMb) {
    return new TaskSpec(kind, name, argsJson, queue, priority, c, memMb, labels, maxAttempts, backoff, timeout, notBefore, dependsOn);
  }

  public TaskSpec withLabels(Map<String, String> l) {
    return new TaskSpec(kind, name, argsJson, queue, priority, cpus, memoryMb, l, maxAttempts, backoff, timeout, notBefore, dependsOn);
  }

  public TaskSpec withRetries(int attempts, Duration firstBackoff) {
    return new TaskSpec(kind, name, argsJson, queue, priority, cpus, memoryMb, labels, attempts, firstBackoff, timeout, notBefore, dependsOn);
  }

  public TaskSpec withTimeout(Duration t) {
    return new TaskSpec(kind, name, argsJson, queue, priority, cpus, memoryMb, labels, maxAttempts, backoff, t, notBefore, dependsOn);
  }

  public TaskSpec withNotBefore(Instant t) {
    return new TaskSpec(kind, name, argsJson, queue, priority, cpus, memoryMb, labels, maxAttempts, backoff, timeout, t, dependsOn);
  }

  public TaskSpec withDependsOn(Long task) {
    return new TaskSpec(kind, name, argsJson, queue, priority, cpus, memoryMb, labels, maxAttempts, backoff, timeout, notBefore, task);
  }
}
