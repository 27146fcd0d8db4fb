package org.dbos.kernel;

/**
 * The one error type a system call raises. The code says what went wrong in terms a front end can
 * translate (an errno, a gRPC status, an exit code); the message is one line for a human.
 */
public class SyscallException extends RuntimeException {
  public enum Code {
    /** The caller lacks the right on the object, or its session is not valid. */
    PERMISSION_DENIED,
    /** Bad input: the request can never succeed as written. */
    INVALID_ARGUMENT,
    NOT_FOUND,
    ALREADY_EXISTS,
    /** The system is not in the state the request needs (e.g. the data directory is in use). */
    FAILED_PRECONDITION,
    /** The database cannot be reached or gave up; retrying later may work. */
    UNAVAILABLE,
    /** A bug or an unexpected database error. */
    INTERNAL
  }

  private final Code code;

  public SyscallException(Code code, String message) {
    super(message);
    this.code = code;
  }

  /** For failures that are answers, not faults (an errno): no stack trace is taken, which is most of their cost. */
  protected SyscallException(Code code, String message, boolean stackTrace) {
    super(message, null, false, stackTrace);
    this.code = code;
  }

  public SyscallException(Code code, String message, Throwable cause) {
    super(message, cause);
    this.code = code;
  }

  public Code code() {
    return code;
  }

  public static SyscallException denied(String message) {
    return new SyscallException(Code.PERMISSION_DENIED, message);
  }

  /** PERMISSION_DENIED because the caller's session is closed or expired: a new login may succeed. */
  public static SyscallException sessionEnded(String principal) {
    return new SessionEnded(principal);
  }

  /** See {@link #sessionEnded}: front ends answer it as their protocol's "log in again". */
  public static final class SessionEnded extends SyscallException {
    private SessionEnded(String principal) {
      super(Code.PERMISSION_DENIED, "session of '" + principal + "' is closed or expired");
    }
  }

  public static SyscallException invalid(String message) {
    return new SyscallException(Code.INVALID_ARGUMENT, message);
  }

  public static SyscallException notFound(String message) {
    return new SyscallException(Code.NOT_FOUND, message);
  }
}
