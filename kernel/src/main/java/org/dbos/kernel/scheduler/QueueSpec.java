package org.dbos.kernel.scheduler;

import java.time.Duration;

/**
 * A queue's settings. Null limits mean "none".
 *
 * @param policy          fifo | priority | least_loaded | locality (see {@link Scheduler})
 * @param concurrency     running tasks of this queue in the whole cluster (&gt; 0)
 * @param nodeConcurrency running tasks of this queue per node (&gt; 0)
 * @param rateLimit       at most this many starts per {@code ratePeriod} (&gt; 0, both or neither)
 * @param fairShare       interleave owners: the owner with the fewest running tasks goes first
 */
public record QueueSpec(String name, String policy, Integer concurrency, Integer nodeConcurrency, Integer rateLimit,
                        Duration ratePeriod, boolean fairShare) {
  public static QueueSpec named(String name) {
    return new QueueSpec(name, "fifo", null, null, null, null, false);
  }

  public QueueSpec withPolicy(String p) {
    return new QueueSpec(name, p, concurrency, nodeConcurrency, rateLimit, ratePeriod, fairShare);
  }

  public QueueSpec withConcurrency(Integer global, Integer perNode) {
    return new QueueSpec(name, policy, global, perNode, rateLimit, ratePeriod, fairShare);
  }

  public QueueSpec withRateLimit(Integer starts, Duration per) {
    return new QueueSpec(name, policy, concurrency, nodeConcurrency, starts, per, fairShare);
  }

  public QueueSpec withFairShare(boolean fair) {
    return new QueueSpec(name, policy, concurrency, nodeConcurrency, rateLimit, ratePeriod, fair);
  }
}
