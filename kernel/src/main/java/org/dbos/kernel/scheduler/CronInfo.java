package org.dbos.kernel.scheduler;

import java.time.Instant;

/** A cron schedule: {@code task} is enqueued at every tick of {@code spec} in {@code timeZone}. */
public record CronInfo(String name, String owner, String spec, String timeZone, String queue, String kind,
                       String taskName, String argsJson, Instant nextRunAt, Instant lastRunAt, Long lastTask) {}
