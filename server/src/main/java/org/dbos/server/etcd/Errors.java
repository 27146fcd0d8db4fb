package org.dbos.server.etcd;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.Map;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.kv.Kv;

/** Kernel errors as etcd's gRPC errors: the status code and the exact text clients match on. */
final class Errors {
  private Errors() {}

  static final String PREFIX = "etcdserver: ";
  static final StatusRuntimeException REQUEST_TOO_LARGE = Status.INVALID_ARGUMENT
      .withDescription("etcdserver: request is too large").asRuntimeException();
  static final StatusRuntimeException INVALID_TOKEN = Status.UNAUTHENTICATED
      .withDescription("etcdserver: invalid auth token").asRuntimeException();
  static final StatusRuntimeException USER_EMPTY = Status.INVALID_ARGUMENT
      .withDescription("etcdserver: user name is empty").asRuntimeException();
  static final StatusRuntimeException AUTH_FAILED = Status.INVALID_ARGUMENT
      .withDescription("etcdserver: authentication failed, invalid user ID or password").asRuntimeException();

  private static final Map<String, Status.Code> CODES = Map.ofEntries(
      Map.entry(Kv.ERR_COMPACTED, Status.Code.OUT_OF_RANGE),
      Map.entry(Kv.ERR_FUTURE_REV, Status.Code.OUT_OF_RANGE),
      Map.entry(Kv.ERR_LEASE_TTL_TOO_LARGE, Status.Code.OUT_OF_RANGE),
      Map.entry(Kv.ERR_KEY_NOT_FOUND, Status.Code.INVALID_ARGUMENT),
      Map.entry(Kv.ERR_EMPTY_KEY, Status.Code.INVALID_ARGUMENT),
      Map.entry(Kv.ERR_VALUE_PROVIDED, Status.Code.INVALID_ARGUMENT),
      Map.entry(Kv.ERR_LEASE_PROVIDED, Status.Code.INVALID_ARGUMENT),
      Map.entry(Kv.ERR_TOO_MANY_OPS, Status.Code.INVALID_ARGUMENT),
      Map.entry(Kv.ERR_DUPLICATE_KEY, Status.Code.INVALID_ARGUMENT),
      Map.entry(Kv.ERR_LEASE_NOT_FOUND, Status.Code.NOT_FOUND),
      Map.entry(Kv.ERR_LEASE_EXISTS, Status.Code.FAILED_PRECONDITION));

  static StatusRuntimeException translate(RuntimeException e) {
    if (e instanceof StatusRuntimeException s) {
      return s;
    }
    if (e instanceof IllegalArgumentException) {
      return Status.INVALID_ARGUMENT.withDescription(PREFIX + e.getMessage()).asRuntimeException();
    }
    if (!(e instanceof SyscallException se)) {
      return Status.INTERNAL.withDescription(String.valueOf(e)).asRuntimeException();
    }
    if (se.getMessage().startsWith("election: ")) { // etcd's election service returns these as plain errors
      return Status.UNKNOWN.withDescription(se.getMessage()).asRuntimeException();
    }
    Status.Code code = CODES.get(se.getMessage());
    if (code != null) {
      return Status.fromCode(code).withDescription(PREFIX + se.getMessage()).asRuntimeException();
    }
    if (se instanceof SyscallException.SessionEnded) {
      // a token's session the database no longer accepts (expired, or closed when its principal was
      // disabled): etcd too answers a stale token so, and clients log in again on it
      return INVALID_TOKEN;
    }
    return switch (se.code()) {
      case PERMISSION_DENIED -> Status.PERMISSION_DENIED.withDescription("etcdserver: permission denied").asRuntimeException();
      case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT.withDescription(PREFIX + se.getMessage()).asRuntimeException();
      case NOT_FOUND -> Status.NOT_FOUND.withDescription(PREFIX + se.getMessage()).asRuntimeException();
      case ALREADY_EXISTS, FAILED_PRECONDITION ->
          Status.FAILED_PRECONDITION.withDescription(PREFIX + se.getMessage()).asRuntimeException();
      case UNAVAILABLE -> Status.UNAVAILABLE.withDescription(PREFIX + se.getMessage()).asRuntimeException();
      case INTERNAL -> Status.INTERNAL.withDescription(PREFIX + se.getMessage()).asRuntimeException();
    };
  }
}
