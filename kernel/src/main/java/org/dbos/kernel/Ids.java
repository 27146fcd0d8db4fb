package org.dbos.kernel;

import java.security.SecureRandom;
import java.util.UUID;

/** Identifiers minted by the kernel. */
public final class Ids {
  private static final SecureRandom random = new SecureRandom();

  private Ids() {}

  /**
   * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Time ordered, so an index on
   * it grows at the right edge like a sequence, without a shared counter.
   */
  public static UUID uuid7() {
    long ms = System.currentTimeMillis();
    long r1 = random.nextLong();
    long r2 = random.nextLong();
    long msb = (ms << 16) | 0x7000L | (r1 & 0x0FFFL);
    long lsb = (r2 & 0x3FFF_FFFF_FFFF_FFFFL) | 0x8000_0000_0000_0000L;
    return new UUID(msb, lsb);
  }
}
