package org.dbos.bench;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.dbos.kernel.Node;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.dbos.server.etcd.EtcdServer;
import org.dbos.server.etcd.api.*;

/**
 * DBOS's etcd API against a real etcd 3.4 (Debian's, fsync on) on this machine, in one run: put
 * throughput and latency with 1, 16 and 256 clients, single-key range reads, and watch delivery
 * latency (put to event). Clients are closed-loop gRPC callers spread over 8 connections; both servers
 * run throughout, and each workload runs on one right after the other.
 *
 * <p>Usage: {@code EtcdBench [seconds-per-workload]}; {@code EtcdBench serve [port]} only serves DBOS's
 * etcd API (for {@code etcdctl check perf}) until killed.
 */
public final class EtcdBench {
  private EtcdBench() {}

  record Result(String name, double opsPerSec, double p50ms, double p99ms) {
    @Override
    public String toString() {
      return String.format("%-22s %10.0f ops/s  p50 %7.2f ms  p99 %7.2f ms", name, opsPerSec, p50ms, p99ms);
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length > 0 && args[0].equals("serve")) {
      int port = args.length > 1 ? Integer.parseInt(args[1]) : 2379;
      Node node = TestNode.boot();
      EtcdServer etcd = EtcdServer.start(node.kernel(), "127.0.0.1", port);
      System.out.println("DBOS etcd API on " + etcd.address() + " (database " + node.databaseUrl() + ")");
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        var size = node.kernel().meters().get("dbos.kv.batch.size").summary();
        var time = node.kernel().meters().get("dbos.kv.batch.time").timer();
        System.out.printf("dbos write batches: %d, mean %.1f requests, mean %.2f ms each%n", size.count(), size.mean(),
            time.mean(TimeUnit.MILLISECONDS));
        etcd.close();
        node.close();
      }));
      Thread.currentThread().join();
      return;
    }
    int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
    boolean dbosOnly = args.length > 1 && args[1].equals("dbos-only");
    // DBOS runs in its own JVM, as etcd runs in its own process: the client JVM is the same for both
    int port = TestDatabase.freePort();
    String java = ProcessHandle.current().info().command().orElse("java");
    Process dbos = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp",
        System.getProperty("java.class.path"), EtcdBench.class.getName(), "serve", String.valueOf(port))
        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    RealEtcd real = null;
    try {
      waitForPort(port, dbos);
      var servers = new ArrayList<Server>();
      if (!dbosOnly) {
        real = RealEtcd.start();
        servers.add(new Server("etcd 3.4", real.endpoint()));
      }
      servers.add(new Server("dbos", "127.0.0.1:" + port));
      run(servers, seconds);
      if (dbosOnly) {
        return;
      }
      List<Result> etcdResults = servers.get(0).results;
      List<Result> dbosResults = servers.get(1).results;
      System.out.println();
      System.out.printf("%-22s %14s %14s %8s %12s %12s%n", "workload", "etcd ops/s", "dbos ops/s", "ratio",
          "etcd p99 ms", "dbos p99 ms");
      for (int i = 0; i < etcdResults.size(); i++) {
        Result e = etcdResults.get(i);
        Result d = dbosResults.get(i);
        System.out.printf("%-22s %14.0f %14.0f %7.2fx %12.2f %12.2f%n", e.name, e.opsPerSec, d.opsPerSec,
            d.opsPerSec / e.opsPerSec, e.p99ms, d.p99ms);
      }
    } finally {
      if (real != null) {
        real.close();
      }
      dbos.destroy();
      dbos.waitFor();
    }
  }

  /** A server under test: its clients' connections and its results, in workload order. */
  static final class Server {
    final String label;
    final List<ManagedChannel> channels = new ArrayList<>();
    final List<Result> results = new ArrayList<>();

    Server(String label, String endpoint) {
      this.label = label;
      for (int i = 0; i < 8; i++) {
        channels.add(NettyChannelBuilder.forTarget(endpoint).usePlaintext().build());
      }
    }
  }

  /**
   * Runs every workload on every server, the servers one right after the other for each workload and
   * in alternating order, so that a change in the machine's load (it is shared) falls on both alike.
   */
  static void run(List<Server> servers, int seconds) throws Exception {
    try {
      byte[] value = new byte[256];
      Arrays.fill(value, (byte) 'v');
      for (Server s : servers) {
        // unmeasured: JIT-compiles a JVM server's paths (etcd, in Go, needs none) and fills the keys
        closedLoop("warm-up", s.channels, 16, seconds, true, value);
      }
      for (int workload = 0; workload < 5; workload++) {
        var order = new ArrayList<>(servers);
        if (workload % 2 == 1) {
          java.util.Collections.reverse(order);
        }
        for (Server s : order) {
          s.results.add(measure(workload, s, seconds, value));
        }
      }
      for (Server s : servers) {
        System.out.println("== " + s.label);
        s.results.forEach(r -> System.out.println("  " + r));
      }
    } finally {
      servers.forEach(s -> s.channels.forEach(ManagedChannel::shutdownNow));
    }
  }

  /** Workload {@code i}: puts with 1, 16 and 256 clients, ranges with 16, watch delivery. */
  static Result measure(int i, Server s, int seconds, byte[] value) throws Exception {
    return switch (i) {
      case 0, 1, 2 -> {
        int clients = new int[] {1, 16, 256}[i];
        yield closedLoop("put " + clients + " clients", s.channels, clients, seconds, true, value);
      }
      case 3 -> closedLoop("range 16 clients", s.channels, 16, seconds, false, value);
      default -> watchLatency(s.channels.getFirst(), 500);
    };
  }

  /**
   * {@code clients} callers, each issuing its next request when the previous one answered: Puts of
   * 256-byte values or single-key Ranges over 10,000 keys.
   */
  static Result closedLoop(String name, List<ManagedChannel> channels, int clients, int seconds, boolean put,
                           byte[] value) throws Exception {
    var done = new AtomicLong();
    var latencies = new ConcurrentHashMap<Integer, long[]>();
    long end = System.nanoTime() + seconds * 1_000_000_000L;
    var threads = new ArrayList<Thread>();
    var counter = new AtomicLong();
    for (int c = 0; c < clients; c++) {
      int id = c;
      var stub = KVGrpc.newBlockingStub(channels.get(c % channels.size()));
      threads.add(Thread.ofVirtual().start(() -> {
        long[] lat = new long[Math.max(4096, (1 << 22) / clients)];
        int n = 0;
        while (System.nanoTime() < end) {
          long t0 = System.nanoTime();
          long i = counter.getAndIncrement();
          if (put) {
            stub.put(PutRequest.newBuilder().setKey(ByteString.copyFromUtf8("/bench/k" + (i % 10_000)))
                .setValue(ByteString.copyFrom(value)).build());
          } else {
            stub.range(RangeRequest.newBuilder().setKey(ByteString.copyFromUtf8("/bench/k" + (i % 10_000))).build());
          }
          if (n < lat.length) {
            lat[n++] = System.nanoTime() - t0;
          }
          done.incrementAndGet();
        }
        latencies.put(id, Arrays.copyOf(lat, n));
      }));
    }
    long start = System.nanoTime();
    for (Thread t : threads) {
      t.join();
    }
    double secs = (System.nanoTime() - start) / 1e9;
    long[] all = latencies.values().stream().flatMapToLong(Arrays::stream).sorted().toArray();
    return new Result(name, done.get() / secs, pct(all, 0.50), pct(all, 0.99));
  }

  /** Puts one at a time with a watch on the key; latency is put sent → event received. */
  static Result watchLatency(ManagedChannel channel, int n) throws Exception {
    var sent = new ConcurrentHashMap<Long, Long>();
    var lat = new long[n];
    var got = new AtomicInteger();
    var created = new CountDownLatch(1);
    var all = new CountDownLatch(n);
    var watch = WatchGrpc.newStub(channel);
    StreamObserver<WatchRequest> req = watch.watch(new StreamObserver<>() {
      public void onNext(WatchResponse r) {
        long now = System.nanoTime();
        if (r.getCreated()) {
          created.countDown();
        }
        for (Event e : r.getEventsList()) {
          long i = Long.parseLong(e.getKv().getValue().toStringUtf8());
          Long t0 = sent.get(i);
          int k = got.getAndIncrement();
          if (t0 != null && k < n) {
            lat[k] = now - t0;
          }
          all.countDown();
        }
      }

      public void onError(Throwable t) {
        if (all.getCount() > 0) { // not the channel's shutdown after the last event
          t.printStackTrace();
        }
      }

      public void onCompleted() {}
    });
    req.onNext(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
        .setKey(ByteString.copyFromUtf8("/bench/watch"))).build());
    created.await(10, TimeUnit.SECONDS);
    var kv = KVGrpc.newBlockingStub(channel);
    long start = System.nanoTime();
    for (long i = 0; i < n; i++) {
      sent.put(i, System.nanoTime());
      kv.put(PutRequest.newBuilder().setKey(ByteString.copyFromUtf8("/bench/watch"))
          .setValue(ByteString.copyFromUtf8(Long.toString(i))).build());
    }
    all.await(30, TimeUnit.SECONDS);
    double secs = (System.nanoTime() - start) / 1e9;
    req.onCompleted();
    long[] sorted = Arrays.stream(lat).sorted().toArray();
    return new Result("watch put->event", n / secs, pct(sorted, 0.50), pct(sorted, 0.99));
  }

  static void waitForPort(int port, Process p) throws Exception {
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (true) {
      try (var s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 200);
        return;
      } catch (IOException e) {
        if (System.nanoTime() > deadline || !p.isAlive()) {
          throw new IOException("DBOS did not start serving on port " + port);
        }
        Thread.sleep(100);
      }
    }
  }

  static double pct(long[] sorted, double p) {
    if (sorted.length == 0) {
      return 0;
    }
    return sorted[Math.min(sorted.length - 1, (int) (p * sorted.length))] / 1e6;
  }

  /** A real etcd 3.4 on loopback with a temporary data directory (fsync on: its default). */
  static final class RealEtcd implements AutoCloseable {
    final Process process;
    final Path dir;
    final int port;

    RealEtcd(Process process, Path dir, int port) {
      this.process = process;
      this.dir = dir;
      this.port = port;
    }

    static RealEtcd start() throws IOException, InterruptedException {
      Path dir = Files.createTempDirectory("dbos-bench-etcd-");
      int client = TestDatabase.freePort();
      int peer = TestDatabase.freePort();
      Process p = new ProcessBuilder("/usr/bin/etcd", "--name", "default", "--data-dir", dir.resolve("data").toString(),
          "--listen-client-urls", "http://127.0.0.1:" + client, "--advertise-client-urls", "http://127.0.0.1:" + client,
          "--listen-peer-urls", "http://127.0.0.1:" + peer, "--initial-advertise-peer-urls", "http://127.0.0.1:" + peer,
          "--initial-cluster", "default=http://127.0.0.1:" + peer, "--log-level", "error", "--logger", "zap")
          .redirectErrorStream(true).redirectOutput(dir.resolve("etcd.log").toFile()).start();
      long deadline = System.nanoTime() + 15_000_000_000L;
      while (true) {
        try (var s = new Socket()) {
          s.connect(new InetSocketAddress("127.0.0.1", client), 200);
          Thread.sleep(500);
          return new RealEtcd(p, dir, client);
        } catch (IOException e) {
          if (System.nanoTime() > deadline || !p.isAlive()) {
            p.destroyForcibly();
            throw new IOException("etcd did not start: " + Files.readString(dir.resolve("etcd.log")));
          }
          Thread.sleep(50);
        }
      }
    }

    String endpoint() {
      return "127.0.0.1:" + port;
    }

    @Override
    public void close() throws Exception {
      process.destroyForcibly();
      process.waitFor();
      try (var s = Files.walk(dir)) {
        s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
      }
    }
  }
}
