package org.dbos.kernel.files;

import java.time.Instant;

/**
 * One attribute change: chmod ({@code mode}), chown ({@code uid}/{@code gid}, -1 unchanged) or
 * utimens ({@code atime}/{@code mtime}: null unchanged, {@link FileSystem#NOW} the current time).
 * Fields a change does not set are null.
 */
public record SetAttr(Integer mode, Integer uid, Integer gid, Instant atime, Instant mtime) {
  public static SetAttr chmod(int mode) {
    return new SetAttr(mode & 07777, null, null, null, null);
  }

  public static SetAttr chown(int uid, int gid) {
    return new SetAttr(null, uid, gid, null, null);
  }

  public static SetAttr utimens(Instant atime, Instant mtime) {
    return new SetAttr(null, null, null, atime, mtime);
  }

  boolean isChmod() {
    return mode != null;
  }

  boolean isChown() {
    return uid != null;
  }
}
