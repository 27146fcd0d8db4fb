package org.dbos.kernel.files;

import java.nio.charset.StandardCharsets;

/** One entry of a directory listing: its name (raw bytes) and the inode's attributes. */
public record DirEntry(byte[] rawName, Stat stat) {
  /** The name decoded as UTF-8. */
  public String name() {
    return new String(rawName, StandardCharsets.UTF_8);
  }
}
