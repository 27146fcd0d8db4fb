package org.dbos.kernel.files;

/**
 * What one {@link FileSystem#purge} call forgot: old inode versions, removed or renamed names, chunk
 * rows of closed versions, and blobs no chunk row used any more. {@code more} when a batch limit was
 * reached: older history remains, and the caller calls again.
 */
public record Purged(long versions, long names, long chunks, long blobs, boolean more) {
  public Purged plus(Purged p) {
    return new Purged(versions + p.versions, names + p.names, chunks + p.chunks, blobs + p.blobs, p.more);
  }

  /** Rows of every kind. */
  public long rows() {
    return versions + names + chunks + blobs;
  }

  public boolean none() {
    return rows() == 0;
  }
}
