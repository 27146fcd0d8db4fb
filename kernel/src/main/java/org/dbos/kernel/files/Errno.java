package org.dbos.kernel.files;

/** The POSIX errors a file-system call can fail with, with their Linux numbers (what FUSE returns, negated). */
public enum Errno {
  EPERM(1), ENOENT(2), EIO(5), ENXIO(6), EBADF(9), EACCES(13), EBUSY(16), EEXIST(17), EXDEV(18), ENOTDIR(20), EISDIR(21),
  EINVAL(22), EFBIG(27), ENOSPC(28), EROFS(30), EMLINK(31), ENAMETOOLONG(36), ENOTEMPTY(39), ELOOP(40);

  private final int number;

  Errno(int number) {
    this.number = number;
  }

  /** The Linux errno value. */
  public int number() {
    return number;
  }
}
