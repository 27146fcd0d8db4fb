package org.dbos.kernel.scheduler;

import java.util.UUID;

/** Which tasks {@link Scheduler#list} returns; null fields match everything. Newest first, at most {@code limit}. */
public record TaskFilter(String state, String queue, UUID node, String owner, int limit) {
  public static TaskFilter all() {
    return new TaskFilter(null, null, null, null, 100);
  }
}
