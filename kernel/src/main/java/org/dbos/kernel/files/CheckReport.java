package org.dbos.kernel.files;

import java.util.List;

/**
 * What {@link FileSystem#check} found: counts, and one line per inconsistency (empty when consistent).
 * Unreferenced blobs are garbage awaiting the purge, not an inconsistency.
 */
public record CheckReport(long inodes, long entries, long chunks, long blobs, long garbageBlobs, List<String> problems) {
  public boolean ok() {
    return problems.isEmpty();
  }
}
