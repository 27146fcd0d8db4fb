package org.dbos.server.etcd;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.kv.Elections;
import org.dbos.kernel.kv.KvStore;
import org.dbos.server.etcd.api.ResponseHeader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The etcd v3 gRPC API served from the OS database: KV, Watch, Lease, Maintenance, Cluster, Auth, the
 * v3lock and v3election services, and gRPC health, each RPC one call into {@link KvStore}. Identity: with etcd auth disabled (the
 * default) callers act as the built-in principal {@code etcd} (rights on {@code kv:} and
 * {@code lease:} only); with it enabled, a caller authenticates as a DBOS principal and sends the
 * token in metadata {@code token}, and each call is checked against that principal's grants.
 */
public final class EtcdServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EtcdServer.class);
  /** etcd's limit on one request (--max-request-bytes); gRPC frames up to 2 MiB are read, then refused. */
  static final int MAX_REQUEST_BYTES = 3 * 512 * 1024;
  static final int MAX_RECEIVE_BYTES = MAX_REQUEST_BYTES + 512 * 1024;
  /** The version Status reports: ≥ 3.5.13 tells Kubernetes progress requests work as etcd's do. */
  public static final String VERSION = "3.5.13";
  public static final String PRINCIPAL = "etcd";
  static final Context.Key<String> TOKEN = Context.key("etcd-token");
  private static final java.util.Set<String> WRITES = java.util.Set.of("etcdserverpb.KV/Put",
      "etcdserverpb.KV/DeleteRange", "etcdserverpb.KV/Txn");
  private static final Metadata.Key<String> TOKEN_HEADER = Metadata.Key.of("token", Metadata.ASCII_STRING_MARSHALLER);

  private final Kernel kernel;
  private final KvStore store;
  private final boolean ownsStore;
  private final Server server;
  /** Runs the calls that may wait for the database, off gRPC's network threads. */
  private final java.util.concurrent.ExecutorService blocking = java.util.concurrent.Executors.newCachedThreadPool(
      Thread.ofPlatform().name("etcd-call-", 0).daemon().factory());
  private final long clusterId;
  private final long memberId;
  private final String address;
  /** Logins by token, each until its session's TTL ends; expired ones are dropped at each Authenticate. */
  private final ConcurrentHashMap<String, Token> tokens = new ConcurrentHashMap<>();
  private volatile Duration tokenTtl = Kernel.LOGIN_TTL;
  private volatile Session anonymous;
  private volatile boolean authEnabled;
  private volatile long authCheckedAt;
  private final java.util.concurrent.atomic.AtomicBoolean refreshing = new java.util.concurrent.atomic.AtomicBoolean();

  private EtcdServer(Kernel kernel, KvStore store, boolean ownsStore, String host, int port) {
    this.kernel = kernel;
    this.store = store;
    this.ownsStore = ownsStore;
    this.clusterId = clusterId(kernel);
    this.memberId = memberId(kernel.nodeId().orElse(new UUID(0, 1)));
    this.anonymous = kernel.openSession(PRINCIPAL, Duration.ofDays(3650));
    this.authEnabled = readAuthEnabled();
    this.authCheckedAt = System.nanoTime();
    var health = new HealthStatusManager();
    ServerInterceptor tokens = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                         ServerCallHandler<Q, R> next) {
        String token = headers.get(TOKEN_HEADER);
        if (token == null) { // no context of its own (wrapping every callback of the call): session() reads null
          return next.startCall(call, headers);
        }
        return Contexts.interceptCall(Context.current().withValue(TOKEN, token), call, headers, next);
      }
    };
    var elections = new Elections(store);
    try {
      this.server = NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
          .permitKeepAliveTime(5, TimeUnit.SECONDS)
          .permitKeepAliveWithoutCalls(true)
          .maxInboundMessageSize(MAX_RECEIVE_BYTES)
          // KV writes only enqueue and answer from the commit: they run on the network thread from the
          // start (with a default executor, gRPC would look the method up there first: a thread hand-off
          // per put); every other call may wait for the database, so it moves to the blocking pool
          .directExecutor()
          .callExecutor(new io.grpc.ServerCallExecutorSupplier() {
            @Override
            public <Q, R> java.util.concurrent.Executor getExecutor(ServerCall<Q, R> call, Metadata headers) {
              return WRITES.contains(call.getMethodDescriptor().getFullMethodName()) ? null : blocking;
            }
          })
          .addService(ServerInterceptors.intercept(new KvService(this), tokens))
          .addService(ServerInterceptors.intercept(new WatchService(this), tokens))
          .addService(ServerInterceptors.intercept(new LeaseService(this), tokens))
          .addService(ServerInterceptors.intercept(new MaintenanceService(this), tokens))
          .addService(ServerInterceptors.intercept(new ClusterService(this), tokens))
          .addService(ServerInterceptors.intercept(new AuthService(this), tokens))
          .addService(ServerInterceptors.intercept(new LockService(this, elections), tokens))
          .addService(ServerInterceptors.intercept(new ElectionService(this, elections), tokens))
          .addService(health.getHealthService())
          .build()
          .start();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot serve the etcd API on " + host + ":" + port + ": " + e.getMessage(), e);
    }
    this.address = host + ":" + server.getPort();
    log.info("etcd API on {}", address);
  }

  /** Serves the etcd API for {@code kernel} on host:port (port 0 picks a free one); its own store. */
  public static EtcdServer start(Kernel kernel, String host, int port) {
    KvStore store = KvStore.start(kernel);
    return new EtcdServer(kernel, store, true, host, port);
  }

  /** Serves the etcd API over an existing store. */
  public static EtcdServer start(KvStore store, String host, int port) {
    return new EtcdServer(store.kernel(), store, false, host, port);
  }

  public int port() {
    return server.getPort();
  }

  public String address() {
    return address;
  }

  public KvStore store() {
    return store;
  }

  Kernel kernel() {
    return kernel;
  }

  long clusterId() {
    return clusterId;
  }

  long memberId() {
    return memberId;
  }

  /** The header every response carries. raft_term is fixed: there is no Raft, the database orders writes. */
  ResponseHeader header(long revision) {
    return ResponseHeader.newBuilder().setClusterId(clusterId).setMemberId(memberId).setRevision(revision)
        .setRaftTerm(1).build();
  }

  /** The caller's session: from its token, or the built-in principal while auth is disabled. */
  Session session() {
    String token = TOKEN.get();
    if (token != null && !token.isEmpty()) {
      Token t = tokens.get(token);
      if (t == null || t.expired(System.nanoTime())) {
        // etcd's answer to an unknown or expired token: clients (clientv3, jetcd) log in again on it
        throw Errors.INVALID_TOKEN;
      }
      return t.session();
    }
    if (authEnabled()) {
      throw Errors.USER_EMPTY;
    }
    return anonymous;
  }

  /**
   * Whether auth is on, as of at most about a second ago (another node may have switched it): never
   * waits for the database, since KV writes run on gRPC's network threads.
   */
  boolean authEnabled() {
    long now = System.nanoTime();
    if (now - authCheckedAt > 1_000_000_000L && refreshing.compareAndSet(false, true)) {
      authCheckedAt = now;
      Thread.ofVirtual().start(() -> {
        try {
          authEnabled = readAuthEnabled();
        } catch (RuntimeException e) {
          log.debug("could not read the auth flag: {}", e.getMessage());
        } finally {
          refreshing.set(false);
        }
      });
    }
    return authEnabled;
  }

  private boolean readAuthEnabled() {
    return kernel.database().transaction(c -> {
      try (var rs = c.createStatement().executeQuery("SELECT enabled FROM kv_auth")) {
        return rs.next() && rs.getBoolean(1);
      }
    });
  }

  /** Switches etcd auth on or off, audited as {@code caller} (an admin: etcd's root). */
  void setAuthEnabled(Session caller, boolean on) {
    kernel.call(caller, on ? "etcd.auth.enable" : "etcd.auth.disable", org.dbos.kernel.Right.ADMIN, "kv:",
        tx -> tx.update("UPDATE kv_auth SET enabled = ?", on));
    authEnabled = on;
    authCheckedAt = System.nanoTime();
  }

  /** A login: its session, and when its token expires (System.nanoTime), no later than the session. */
  private record Token(Session session, long expiresAt) {
    boolean expired(long now) {
      return now - expiresAt >= 0;
    }
  }

  /** Logs in a DBOS principal and returns a token for it, valid as long as its session. */
  String authenticate(String name, String password) {
    long now = System.nanoTime(); // before the login: the token expires no later than its session
    tokens.values().removeIf(t -> t.expired(now));
    Session s;
    try {
      s = kernel.login(name, password);
    } catch (SyscallException e) {
      throw Errors.AUTH_FAILED;
    }
    String token = UUID.randomUUID().toString().replace("-", "") + "." + s.id();
    tokens.put(token, new Token(s, now + tokenTtl.toNanos()));
    return token;
  }

  /** For tests: how long tokens issued from now on last (at most the session's {@link Kernel#LOGIN_TTL}). */
  void tokenTtl(Duration ttl) {
    tokenTtl = ttl;
  }

  /** For tests: how many tokens are held. */
  int tokenCount() {
    return tokens.size();
  }

  private static long clusterId(Kernel kernel) {
    try {
      return kernel.database().transaction(c -> {
        try (var rs = c.createStatement().executeQuery(
            "SELECT system_identifier # hashtext(current_database()) FROM pg_control_system()")) {
          rs.next();
          return rs.getLong(1) & Long.MAX_VALUE;
        }
      });
    } catch (RuntimeException e) {
      return 0x64626f73L; // "dbos"
    }
  }

  static long memberId(UUID node) {
    return (node.getMostSignificantBits() ^ node.getLeastSignificantBits()) & Long.MAX_VALUE;
  }

  @Override
  public void close() {
    server.shutdown();
    try {
      if (!server.awaitTermination(2, TimeUnit.SECONDS)) {
        server.shutdownNow();
        server.awaitTermination(2, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    blocking.shutdown();
    if (ownsStore) {
      store.close();
    }
  }
}
