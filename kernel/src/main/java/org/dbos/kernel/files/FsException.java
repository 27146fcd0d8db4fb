package org.dbos.kernel.files;

import org.dbos.kernel.SyscallException;

/** A file-system call failed with a POSIX error; the message names the path, never a stack trace. */
public final class FsException extends SyscallException {
  private final Errno errno;

  public FsException(Errno errno, String message) {
    super(codeOf(errno), errno + ": " + message, false); // lookups of absent names throw one per new file
    this.errno = errno;
  }

  public Errno errno() {
    return errno;
  }

  /** The errno for any system-call failure: an FsException's own, else the nearest for its code. */
  public static Errno errnoOf(SyscallException e) {
    if (e instanceof FsException fe) {
      return fe.errno;
    }
    return switch (e.code()) {
      case PERMISSION_DENIED -> Errno.EACCES;
      case NOT_FOUND -> Errno.ENOENT;
      case ALREADY_EXISTS -> Errno.EEXIST;
      case INVALID_ARGUMENT -> Errno.EINVAL;
      default -> Errno.EIO;
    };
  }

  private static Code codeOf(Errno e) {
    return switch (e) {
      case EPERM, EACCES -> Code.PERMISSION_DENIED;
      case ENOENT -> Code.NOT_FOUND;
      case EEXIST -> Code.ALREADY_EXISTS;
      case EIO -> Code.INTERNAL;
      case EBUSY, ENOTEMPTY, ENOSPC, EROFS -> Code.FAILED_PRECONDITION;
      default -> Code.INVALID_ARGUMENT;
    };
  }
}
