package org.dbos.server.etcd;

import static org.dbos.server.etcd.KvService.answer;

import com.google.protobuf.ByteString;
import io.grpc.stub.StreamObserver;
import org.dbos.kernel.kv.KvRoles;
import org.dbos.server.etcd.api.*;

/**
 * etcd auth mapped onto DBOS principals: an etcd user is a principal (kind user), Authenticate logs it
 * in with its DBOS password and returns a token, AuthEnable makes tokens mandatory. etcd users with
 * admin rights play etcd's root. An etcd role is a DBOS role ({@link KvRoles}): its permissions are
 * grants on {@code kv:<prefix>}, and a user granted it holds them.
 */
final class AuthService extends AuthGrpc.AuthImplBase {
  private final EtcdServer etcd;
  private final KvRoles roles;

  AuthService(EtcdServer etcd) {
    this.etcd = etcd;
    this.roles = new KvRoles(etcd.kernel());
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
      etcd.setAuthEnabled(requireAdmin(), true);
      return AuthEnableResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  @Override
  public void authDisable(AuthDisableRequest req, StreamObserver<AuthDisableResponse> out) {
    answer(out, () -> {
      etcd.setAuthEnabled(requireAdmin(), false);
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
      var granted = roles.roles(etcd.session(), p.name());
      if (p.admin() && !granted.contains("root")) {
        b.addRoles("root");
      }
      return b.addAllRoles(granted).build();
    });
  }

  @Override
  public void userGrantRole(AuthUserGrantRoleRequest req, StreamObserver<AuthUserGrantRoleResponse> out) {
    answer(out, () -> {
      roles.grantRole(etcd.session(), req.getUser(), req.getRole());
      return AuthUserGrantRoleResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  @Override
  public void userRevokeRole(AuthUserRevokeRoleRequest req, StreamObserver<AuthUserRevokeRoleResponse> out) {
    answer(out, () -> {
      roles.revokeRole(etcd.session(), req.getName(), req.getRole());
      return AuthUserRevokeRoleResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  @Override
  public void roleAdd(AuthRoleAddRequest req, StreamObserver<AuthRoleAddResponse> out) {
    answer(out, () -> {
      roles.add(etcd.session(), req.getName());
      return AuthRoleAddResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  @Override
  public void roleDelete(AuthRoleDeleteRequest req, StreamObserver<AuthRoleDeleteResponse> out) {
    answer(out, () -> {
      roles.delete(etcd.session(), req.getRole());
      return AuthRoleDeleteResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  @Override
  public void roleList(AuthRoleListRequest req, StreamObserver<AuthRoleListResponse> out) {
    answer(out, () -> AuthRoleListResponse.newBuilder().setHeader(etcd.header(0))
        .addAllRoles(roles.list(etcd.session())).build());
  }

  @Override
  public void roleGet(AuthRoleGetRequest req, StreamObserver<AuthRoleGetResponse> out) {
    answer(out, () -> {
      var b = AuthRoleGetResponse.newBuilder().setHeader(etcd.header(0));
      for (KvRoles.Permission p : roles.permissions(etcd.session(), req.getRole())) {
        b.addPerm(Permission.newBuilder().setPermType(Permission.Type.valueOf(p.type().name()))
            .setKey(ByteString.copyFrom(p.key())).setRangeEnd(ByteString.copyFrom(p.rangeEnd())));
      }
      return b.build();
    });
  }

  @Override
  public void roleGrantPermission(AuthRoleGrantPermissionRequest req,
                                  StreamObserver<AuthRoleGrantPermissionResponse> out) {
    answer(out, () -> {
      var p = req.getPerm();
      roles.grantPermission(etcd.session(), req.getName(), KvRoles.Type.valueOf(p.getPermType().name()),
          p.getKey().toByteArray(), p.getRangeEnd().toByteArray());
      return AuthRoleGrantPermissionResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  @Override
  public void roleRevokePermission(AuthRoleRevokePermissionRequest req,
                                   StreamObserver<AuthRoleRevokePermissionResponse> out) {
    answer(out, () -> {
      roles.revokePermission(etcd.session(), req.getRole(), req.getKey().toByteArray(), req.getRangeEnd().toByteArray());
      return AuthRoleRevokePermissionResponse.newBuilder().setHeader(etcd.header(0)).build();
    });
  }

  /** The caller's session, if it is an admin's (etcd's root). */
  private org.dbos.kernel.Session requireAdmin() {
    var s = etcd.session();
    if (!s.admin()) {
      throw io.grpc.Status.PERMISSION_DENIED.withDescription("etcdserver: permission denied").asRuntimeException();
    }
    return s;
  }
}
