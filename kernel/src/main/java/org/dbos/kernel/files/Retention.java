package org.dbos.kernel.files;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.SyscallException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps DBFS's old versions for a retention period and no longer: every {@link #every} it calls
 * {@link FileSystem#purgeAll} as the system principal. Every node runs one; purges of several nodes
 * take turns (a lock in the database), and the later finds less. Stops when the kernel closes.
 */
public final class Retention implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Retention.class);
  /** The default period: a week of versions to restore from. */
  public static final Duration DEFAULT = Duration.ofDays(7);

  private final FileSystem fs;
  private final Kernel kernel;
  private final Duration keep;
  private final ScheduledExecutorService timer;

  private Retention(Kernel kernel, Duration keep) {
    this.kernel = kernel;
    this.fs = FileSystem.of(kernel);
    this.keep = keep;
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().name("dbos-fs-retention").daemon().unstarted(r));
  }

  /** Starts purging versions older than {@code keep} on {@code kernel}, the first time after {@link #every}. */
  public static Retention start(Kernel kernel, Duration keep) {
    if (keep.isNegative() || keep.isZero()) {
      throw SyscallException.invalid("the file system's retention period must be positive, got " + keep);
    }
    var r = new Retention(kernel, keep);
    long ms = every(keep).toMillis();
    r.timer.scheduleWithFixedDelay(r::purge, ms, ms, TimeUnit.MILLISECONDS);
    kernel.onClose(r);
    return r;
  }

  /** How often to purge: a quarter of the period, at least every hour and at most every second. */
  static Duration every(Duration keep) {
    Duration quarter = keep.dividedBy(4);
    return quarter.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1)
        : quarter.compareTo(Duration.ofHours(1)) > 0 ? Duration.ofHours(1) : quarter;
  }

  private void purge() {
    try {
      Purged total = fs.purgeAll(kernel.system(), keep, p -> {});
      if (!total.none()) {
        log.info("DBFS retention ({}): forgot {} versions, {} removed names, {} chunks and {} blobs", keep,
            total.versions(), total.names(), total.chunks(), total.blobs());
      }
    } catch (RuntimeException e) {
      log.warn("DBFS retention purge failed, will retry in {}: {}", every(keep), e.getMessage());
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
