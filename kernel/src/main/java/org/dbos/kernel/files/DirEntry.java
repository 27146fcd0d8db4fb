package org.dbos.kernel.files;

/** One entry of a directory listing: its name (raw bytes) and the inode's attributes. */
public record DirEntry(byte[] rawName, Stat stat) {
  /** The name as a String: UTF-8, bytes that are not as U+DC80..U+DCFF ({@link Names}). */
  public String name() {
    return Names.string(rawName);
  }
}
