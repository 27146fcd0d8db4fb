package org.dbos.kernel.files;

import java.time.Instant;

/**
 * An inode's attributes. {@code mode} holds the permission bits (incl. suid 04000, sgid 02000, sticky
 * 01000) without the type; {@link #posixMode()} adds the S_IF* type bits.
 */
public record Stat(long ino, Kind kind, int mode, int uid, int gid, long size, int nlink, Instant atime,
                   Instant mtime, Instant ctime, long version, int chunkSize) {
  public enum Kind {
    FILE('f', 0100000), DIRECTORY('d', 0040000), SYMLINK('l', 0120000), FIFO('p', 0010000), SOCKET('s', 0140000);

    final char code;
    final int typeBits;

    Kind(char code, int typeBits) {
      this.code = code;
      this.typeBits = typeBits;
    }

    /** The kind of an S_IF* type (of st_mode or mknod's mode); null for device nodes. */
    public static Kind ofType(int posixMode) {
      for (Kind k : values()) {
        if ((posixMode & 0170000) == k.typeBits) {
          return k;
        }
      }
      return null;
    }

    static Kind of(String code) {
      return switch (code.charAt(0)) {
        case 'f' -> FILE;
        case 'd' -> DIRECTORY;
        case 'l' -> SYMLINK;
        case 'p' -> FIFO;
        case 's' -> SOCKET;
        default -> throw new IllegalStateException("unknown inode kind " + code);
      };
    }
  }

  public boolean isDirectory() {
    return kind == Kind.DIRECTORY;
  }

  public boolean isFile() {
    return kind == Kind.FILE;
  }

  public boolean isSymlink() {
    return kind == Kind.SYMLINK;
  }

  /** A named pipe or a socket file: its data is the opening machine's kernel's, never DBFS's. */
  public boolean isSpecial() {
    return kind == Kind.FIFO || kind == Kind.SOCKET;
  }

  /** st_mode: type bits | permission bits. */
  public int posixMode() {
    return kind.typeBits | mode;
  }

  /** 512-byte blocks allocated, as st_blocks (holes are not allocated: rounded up per size). */
  public long blocks() {
    return (size + 511) / 512;
  }

  Stat withMode(int newMode) {
    return new Stat(ino, kind, newMode, uid, gid, size, nlink, atime, mtime, ctime, version, chunkSize);
  }

  Stat truncated(long newSize, long newVersion) {
    return new Stat(ino, kind, mode, uid, gid, newSize, nlink, atime, mtime, ctime, newVersion, chunkSize);
  }
}
