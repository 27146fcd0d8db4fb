package org.dbos.kernel.files;

/**
 * An open file: the inode it names (renames and unlinks do not affect it), how it was opened, and
 * its attributes when it was opened. {@code id} is unique in this process; a front end keeps it
 * (FUSE's fh). Close it with {@link FileSystem#close}.
 */
public record FileHandle(long id, long ino, int flags, int chunkSize, Stat opened) {
  public boolean readable() {
    return (flags & FileSystem.O_ACCMODE) != FileSystem.O_WRONLY;
  }

  public boolean writable() {
    return (flags & FileSystem.O_ACCMODE) != FileSystem.O_RDONLY;
  }

  public boolean append() {
    return (flags & FileSystem.O_APPEND) != 0;
  }
}
