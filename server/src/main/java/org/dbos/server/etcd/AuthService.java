package org.dbos.server.etcd;

import static org.dbos.server.etcd.KvService.answer;

import io.grpc.stub.StreamObserver;
import org.dbos.server.etcd.api.*;

/**
 * etcd auth mapped onto DBOS principals: an etcd user is a principal (kind user), Authenticate logs it
 * in with its DBOS password and returns a token, AuthEnable makes tokens mandatory. etcd users with
 * admin rights play etcd's root. Roles are not mapped: rights on keys are DBOS grants on
 * {@code kv:<prefix>} (`dbos user grant`), so the role RPCs answer UNIMPLEMENTED.
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

  @Override
  public void userAdd(AuthUserAddRequest req, StreamObserver<AuthUserAddResponse> out) {
    answer(out, () -> {
      if (req.getName().isEmpty()) {
        throw Errors.USER_EMPTY;
      }
      etcd.kernel().principals().create(etcd.session(), req.getName(), "user", req.getPassword(), null, null, false);
      return AuthUserAddResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  /** Deleting a user disables its principal: DBOS keeps principals for the audit trail. */
  @Override
  public void userDelete(AuthUserDeleteRequest req, StreamObserver<AuthUserDeleteResponse> out) {
    answer(out, () -> {
      etcd.kernel().principals().setDisabled(etcd.session(), req.getName(), true);
      return AuthUserDeleteResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  @Override
  public void userChangePassword(AuthUserChangePasswordRequest req, StreamObserver<AuthUserChangePasswordResponse> out) {
    answer(out, () -> {
      etcd.kernel().principals().setSecret(etcd.session(), req.getName(), req.getPassword());
      return AuthUserChangePasswordResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  @Override
  public void userList(AuthUserListRequest req, StreamObserver<AuthUserListResponse> out) {
    answer(out, () -> {
      var b = AuthUserListResponse.newBuilder().setHeader(etcd.header(0));
      etcd.kernel().principals().list(etcd.session()).stream()
          .filter(p -> p.kind().equals("user") && !p.disabled()).forEach(p -> b.addUsers(p.name()));
      return b.build();
    });
  }

  @Override
  public void userGet(AuthUserGetRequest req, StreamObserver<AuthUserGetResponse> out) {
    answer(out, () -> {
      var p = etcd.kernel().principals().list(etcd.session()).stream()
          .filter(x -> x.name().equals(req.getName()) && !x.disabled()).findFirst()
          .orElseThrow(() -> io.grpc.Status.FAILED_PRECONDITION
              .withDescription("etcdserver: user name not found").asRuntimeException());
      var b = AuthUserGetResponse.newBuilder().setHeader(etcd.header(0));
      if (p.admin()) {
        b.addRoles("root");
      }
      return b.build();
    });
  }

  private void requireAdmin() {
    var s = etcd.session();
    if (!s.admin()) {
      throw io.grpc.Status.PERMISSION_DENIED.withDescription("etcdserver: permission denied").asRuntimeException();
    }
  }
}
