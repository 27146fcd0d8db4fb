package org.dbos.server.etcd;

import static org.dbos.server.etcd.KvService.answer;

import io.grpc.stub.StreamObserver;
import org.dbos.server.etcd.api.*;

/**
 * etcd auth mapped onto DBOS principals: Authenticate logs a principal in (its DBOS password) and
 * returns a token; AuthEnable makes tokens mandatory. Users and roles are managed with `dbos` (grants
 * on {@code kv:<prefix>}), not through this API.
 */
final class AuthService extends AuthGrpc.AuthImplBase {
  private final EtcdServer etcd;

  AuthService(EtcdServer etcd) {
    this.etcd = etcd;
  }

  @Override
  public void authenticate(AuthenticateRequest req, StreamObserver<AuthenticateResponse> out) {
    answer(out, () -> {
      String token = etcd.authenticate(req.getName(), req.getPassword());
      return AuthenticateResponse.newBuilder().setHeader(etcd.header(0)).setToken(token).build();
    });
  }

  @Override
  public void authEnable(AuthEnableRequest req, StreamObserver<AuthEnableResponse> out) {
    answer(out, () -> {
      requireAdmin();
      etcd.setAuthEnabled(true);
      return AuthEnableResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  @Override
  public void authDisable(AuthDisableRequest req, StreamObserver<AuthDisableResponse> out) {
    answer(out, () -> {
      requireAdmin();
      etcd.setAuthEnabled(false);
      return AuthDisableResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  private void requireAdmin() {
    var s = etcd.session();
    if (!s.admin()) {
      throw io.grpc.Status.PERMISSION_DENIED.withDescription("etcdserver: permission denied").asRuntimeException();
    }
  }
}
