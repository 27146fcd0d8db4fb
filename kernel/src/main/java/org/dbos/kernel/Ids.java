package org.dbos.kernel;

import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;

/** Identifiers minted by the kernel. */
public final class Ids {
  private Ids() {}

  /**
   * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Time ordered, so an index on
   * it grows at the right edge like a sequence, without a shared counter. Identifiers, not secrets:
   * the random bits come from a per-thread generator, which has no lock to contend on.
   */
  public static UUID uuid7() {
    long ms = System.currentTimeMillis();
    long r1 = ThreadLocalRandom.current().nextLong();
    long r2 = ThreadLocalRandom.current().nextLong();
    long msb = (ms << 16) | 0x7000L | (r1 & 0x0FFFL);
    long lsb = (r2 & 0x3FFF_FFFF_FFFF_FFFFL) | 0x8000_0000_0000_0000L;
    return new UUID(msb, lsb);
  }
}
