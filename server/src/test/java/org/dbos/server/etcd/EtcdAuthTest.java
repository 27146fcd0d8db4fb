package org.dbos.server.etcd;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.*;

import com.google.protobuf.ByteString;
import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.MetadataUtils;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Node;
import org.dbos.kernel.Right;
import org.dbos.kernel.testing.TestNode;
import org.dbos.server.etcd.api.*;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * etcd auth over gRPC, auth enabled: tokens end as etcd's do (clients log in again on "invalid auth
 * token"), and every call is audited in its caller's name.
 */
class EtcdAuthTest {
  static final String USER = "carol";
  static final String PASSWORD = "carol-pw";
  static Node node;
  static EtcdServer etcd;
  static ManagedChannel channel;
  static String admin;

  @BeforeAll
  static void start() {
    node = TestNode.boot();
    etcd = EtcdServer.start(node.kernel(), "127.0.0.1", 0);
    channel = NettyChannelBuilder.forTarget(etcd.address()).usePlaintext().build();
    var k = node.kernel();
    k.principals().create(k.system(), USER, "user", PASSWORD, null, null, false);
    k.principals().grant(k.system(), USER, Right.READ, "kv:");
    k.principals().grant(k.system(), USER, Right.WRITE, "kv:/audit/");
    k.principals().grant(k.system(), USER, Right.WRITE, "lease:");
    admin = node.dataDirectory().adminCredential().orElseThrow();
    with(AuthGrpc.newBlockingStub(channel), login("admin", admin)).authEnable(AuthEnableRequest.getDefaultInstance());
  }

  @AfterAll
  static void stop() {
    channel.shutdownNow();
    etcd.close();
    node.close();
  }

  static String login(String user, String password) {
    return AuthGrpc.newBlockingStub(channel)
        .authenticate(AuthenticateRequest.newBuilder().setName(user).setPassword(password).build()).getToken();
  }

  /** {@code stub} sending {@code token} in metadata {@code token}, as etcd clients do. */
  static <S extends AbstractStub<S>> S with(S stub, String token) {
    var md = new Metadata();
    md.put(Metadata.Key.of("token", Metadata.ASCII_STRING_MARSHALLER), token);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md)).withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  static KVGrpc.KVBlockingStub kv(String token) {
    return with(KVGrpc.newBlockingStub(channel), token);
  }

  /** The session id a token names (after its dot). */
  static UUID session(String token) {
    return UUID.fromString(token.substring(token.indexOf('.') + 1));
  }

  static ByteString bs(String s) {
    return ByteString.copyFromUtf8(s);
  }

  static void assertInvalidToken(Executable call) {
    var e = assertThrows(StatusRuntimeException.class, call);
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode(), e.toString());
    assertEquals("etcdserver: invalid auth token", e.getStatus().getDescription());
  }

  static void expire(String where, Object arg) {
    node.kernel().database().transaction(c -> {
      try (var ps = c.prepareStatement("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE " + where)) {
        ps.setObject(1, arg);
        return ps.executeUpdate();
      }
    });
  }

  /** A token whose session the database has expired answers as etcd does to an expired token. */
  @Test
  void expiredSessionAnswersInvalidAuthToken() {
    String token = login(USER, PASSWORD);
    kv(token).put(PutRequest.newBuilder().setKey(bs("/audit/e")).setValue(bs("1")).build());
    expire("id = ?", session(token));
    assertInvalidToken(() -> kv(token).put(PutRequest.newBuilder().setKey(bs("/audit/e")).setValue(bs("2")).build()));
    assertInvalidToken(() -> kv(token).range(RangeRequest.newBuilder().setKey(bs("/audit/e")).build()));
    assertInvalidToken(() -> kv("no-such-token").range(RangeRequest.newBuilder().setKey(bs("/audit/e")).build()));
    assertEquals("1", kv(login(USER, PASSWORD)).range(RangeRequest.newBuilder().setKey(bs("/audit/e")).build())
        .getKvs(0).getValue().toStringUtf8());
  }

  /** Tokens end with their TTL, and each login drops the ended ones: the node holds only live tokens. */
  @Test
  void tokensExpireAndAreDropped() throws Exception {
    etcd.tokenTtl(Duration.ofSeconds(2));
    try {
      int before = etcd.tokenCount();
      String first = login(USER, PASSWORD);
      kv(first).range(RangeRequest.newBuilder().setKey(bs("/audit/t")).build());
      login(USER, PASSWORD);
      login(USER, PASSWORD);
      long issued = System.nanoTime(); // after the last login: every token so far ends within 2 s of it
      assertEquals(before + 3, etcd.tokenCount());
      Thread.sleep(Math.max(0, 2_100 - (System.nanoTime() - issued) / 1_000_000));
      assertInvalidToken(() -> kv(first).range(RangeRequest.newBuilder().setKey(bs("/audit/t")).build()));
      String fresh = login(USER, PASSWORD);
      assertEquals(before + 1, etcd.tokenCount());
      kv(fresh).range(RangeRequest.newBuilder().setKey(bs("/audit/t")).build());
    } finally {
      etcd.tokenTtl(Kernel.LOGIN_TTL);
    }
  }

  /** A long-running jetcd client outlives its session: it logs in again on "invalid auth token". */
  @Test
  void jetcdLogsInAgainWhenItsSessionExpires() throws Exception {
    try (Client c = Client.builder().endpoints("http://" + etcd.address())
        .user(ByteSequence.from(USER, UTF_8)).password(ByteSequence.from(PASSWORD, UTF_8)).build()) {
      var key = ByteSequence.from("/audit/j", UTF_8);
      c.getKVClient().put(key, ByteSequence.from("1", UTF_8)).get(10, TimeUnit.SECONDS);
      expire("principal_id = (SELECT id FROM principals WHERE name = ?)", USER);
      c.getKVClient().put(key, ByteSequence.from("2", UTF_8)).get(10, TimeUnit.SECONDS);
      assertEquals("2", c.getKVClient().get(key).get(10, TimeUnit.SECONDS).getKvs().getFirst().getValue().toString(UTF_8));
    }
  }

  /** Each call over gRPC leaves an audit row naming its caller, auth switches included. */
  @Test
  void auditRowsNameTheCaller() {
    String token = login(USER, PASSWORD);
    kv(token).put(PutRequest.newBuilder().setKey(bs("/audit/a")).setValue(bs("1")).build());
    kv(token).range(RangeRequest.newBuilder().setKey(bs("/audit/a")).build());
    kv(token).txn(TxnRequest.newBuilder().addSuccess(RequestOp.newBuilder()
        .setRequestPut(PutRequest.newBuilder().setKey(bs("/audit/b")).setValue(bs("2")))).build());
    with(LeaseGrpc.newBlockingStub(channel), token).leaseGrant(LeaseGrantRequest.newBuilder().setTTL(60).build());
    with(MaintenanceGrpc.newBlockingStub(channel), token).status(StatusRequest.getDefaultInstance());
    with(ClusterGrpc.newBlockingStub(channel), token).memberList(MemberListRequest.getDefaultInstance());
    var calls = calls(session(token));
    for (String call : new String[] {"kv.put", "kv.range", "kv.txn", "lease.grant", "kv.status", "etcd.members"}) {
      assertEquals(USER, calls.get(call), call + " in " + calls);
    }

    String root = login("admin", admin);
    var auth = with(AuthGrpc.newBlockingStub(channel), root);
    auth.authDisable(AuthDisableRequest.getDefaultInstance());
    auth.authEnable(AuthEnableRequest.getDefaultInstance());
    var switches = calls(session(root));
    assertEquals("admin", switches.get("etcd.auth.disable"), switches.toString());
    assertEquals("admin", switches.get("etcd.auth.enable"), switches.toString());
  }

  /**
   * A watch its caller may not read is answered as etcd 3.4 answers it: created and canceled under the
   * client's own id, at the current revision, "permission denied", and then the stream ends.
   */
  @Test
  void aWatchTheCallerMayNotReadEndsTheStreamAsEtcdDoes() throws Exception {
    var k = node.kernel();
    k.principals().create(k.system(), "dave", "user", "dave-pw", null, null, false);
    k.principals().grant(k.system(), "dave", Right.READ, "kv:/mine/");
    long current = kv(login(USER, PASSWORD)).put(PutRequest.newBuilder().setKey(bs("/audit/w")).setValue(bs("1")).build())
        .getHeader().getRevision();
    var got = new java.util.concurrent.LinkedBlockingQueue<Object>();
    var req = with(WatchGrpc.newStub(channel), login("dave", "dave-pw")).watch(new io.grpc.stub.StreamObserver<>() {
      public void onNext(WatchResponse r) {
        got.add(r);
      }

      public void onError(Throwable e) {
        got.add(e);
      }

      public void onCompleted() {
        got.add("completed");
      }
    });
    req.onNext(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder().setKey(bs("/mine/a"))).build());
    var allowed = (WatchResponse) got.poll(10, TimeUnit.SECONDS);
    assertTrue(allowed.getCreated() && !allowed.getCanceled(), allowed.toString());
    req.onNext(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder().setKey(bs("/other"))
        .setWatchId(7)).build());
    var refused = (WatchResponse) got.poll(10, TimeUnit.SECONDS);
    assertEquals(7, refused.getWatchId(), refused + " " + got);
    assertTrue(refused.getCreated() && refused.getCanceled(), refused.toString());
    assertEquals("etcdserver: permission denied", refused.getCancelReason());
    assertEquals(current, refused.getHeader().getRevision());
    assertEquals("completed", got.poll(10, TimeUnit.SECONDS));
  }

  /** The calls audited in {@code session}, each with the principal its row names. */
  static Map<String, String> calls(UUID session) {
    return node.kernel().database().transaction(c -> {
      var out = new HashMap<String, String>();
      try (var ps = c.prepareStatement("""
          SELECT a.call, p.name FROM audit_log a JOIN principals p ON p.id = a.principal_id
          WHERE a.session_id = ? AND a.outcome = 'ok'""")) {
        ps.setObject(1, session);
        try (var rs = ps.executeQuery()) {
          while (rs.next()) {
            out.put(rs.getString(1), rs.getString(2));
          }
        }
      }
      return out;
    });
  }
}
