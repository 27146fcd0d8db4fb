package org.dbos.kernel.scheduler;

import java.time.Instant;
import java.util.UUID;

/** A row of {@code tasks} as a caller sees it. */
public record TaskInfo(long id, String queue, String owner, String kind, String name, String argsJson, String state,
                       int priority, int cpus, long memoryMb, int attempts, int maxAttempts, UUID nodeId,
                       Integer exitCode, String resultJson, String error, Long dependsOn, String cron,
                       Instant createdAt, Instant notBefore, Instant startedAt, Instant finishedAt) {
  public boolean finished() {
    return switch (state) {
      case "succeeded", "failed", "cancelled", "timed_out" -> true;
      default -> false;
    };
  }
}
