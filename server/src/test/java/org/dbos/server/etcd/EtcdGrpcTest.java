package org.dbos.server.etcd;

import static org.junit.jupiter.api.Assertions.*;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.Node;
import org.dbos.kernel.testing.TestNode;
import org.dbos.server.etcd.api.*;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The gRPC server itself: health, keepalive pings, and what one watch stream carries. */
class EtcdGrpcTest {
  static Node node;
  static EtcdServer etcd;
  static ManagedChannel channel;
  static KVGrpc.KVBlockingStub kv;

  @BeforeAll
  static void start() {
    node = TestNode.boot();
    etcd = EtcdServer.start(node.kernel(), "127.0.0.1", 0);
    channel = NettyChannelBuilder.forTarget(etcd.address()).usePlaintext().build();
    kv = KVGrpc.newBlockingStub(channel);
  }

  @AfterAll
  static void stop() {
    channel.shutdownNow();
    etcd.close();
    node.close();
  }

  static ByteString bs(String s) {
    return ByteString.copyFromUtf8(s);
  }

  static void put(String key, String value) {
    kv.withDeadlineAfter(10, TimeUnit.SECONDS).put(PutRequest.newBuilder().setKey(bs(key)).setValue(bs(value)).build());
  }

  /** One client watch stream: its requests, and every response (or error) it got, in order. */
  static final class Stream implements AutoCloseable {
    final LinkedBlockingQueue<Object> responses = new LinkedBlockingQueue<>();
    final StreamObserver<WatchRequest> requests = WatchGrpc.newStub(channel).watch(new StreamObserver<>() {
      public void onNext(WatchResponse r) {
        responses.add(r);
      }

      public void onError(Throwable t) {
        responses.add(t);
      }

      public void onCompleted() {}
    });

    WatchResponse next() throws InterruptedException {
      Object o = responses.poll(10, TimeUnit.SECONDS);
      assertNotNull(o, "no watch response in 10 s");
      if (o instanceof Throwable t) {
        throw new AssertionError("watch stream failed", t);
      }
      return (WatchResponse) o;
    }

    /** Creates a watch and returns its id, from the "created" answer. */
    long create(WatchCreateRequest.Builder c) throws InterruptedException {
      requests.onNext(WatchRequest.newBuilder().setCreateRequest(c).build());
      WatchResponse r = next();
      assertTrue(r.getCreated() && !r.getCanceled(), r.toString());
      return r.getWatchId();
    }

    @Override
    public void close() {
      requests.onCompleted();
    }
  }

  @Test
  void healthCheckAnswersServing() {
    var r = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance());
    assertEquals(HealthCheckResponse.ServingStatus.SERVING, r.getStatus());
  }

  /**
   * A client pinging just above the permitted minimum (5 s), with no call open, keeps its connection:
   * with grpc-java's defaults (5 min, no pings without calls) the server would answer the third ping
   * with GOAWAY too_many_pings. Raw HTTP/2 frames, since grpc-java's client pings at most every 10 s.
   */
  @Test
  void pingsEveryFiveSecondsWithoutCallsKeepTheConnection() throws Exception {
    try (var socket = new Socket("127.0.0.1", etcd.port())) {
      socket.setSoTimeout(10_000);
      var out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
      var in = new DataInputStream(socket.getInputStream());
      out.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      frame(out, 4, 0, new byte[0]); // SETTINGS
      for (long ping = 1; ping <= 3; ping++) {
        Thread.sleep(5_500);
        byte[] payload = ByteBuffer.allocate(8).putLong(ping).array();
        frame(out, 6, 0, payload); // PING
        while (!Arrays.equals(ack(in, out, ping), payload)) {
          // until the PING's ACK
        }
      }
      // a refused PING is acknowledged first, then answered with GOAWAY and the connection's end
      socket.setSoTimeout(1_000);
      assertThrows(java.net.SocketTimeoutException.class, () -> ack(in, out, 4), "the server closes nothing");
    }
  }

  /** Reads one frame: a PING ACK's payload, or null for another frame; fails on GOAWAY. */
  private static byte[] ack(DataInputStream in, DataOutputStream out, long ping) throws IOException {
    int length = in.readUnsignedByte() << 16 | in.readUnsignedShort();
    int type = in.readUnsignedByte();
    int flags = in.readUnsignedByte();
    in.readInt(); // stream id
    byte[] body = in.readNBytes(length);
    if (type == 7) { // GOAWAY: last stream id, error code, debug data
      fail("GOAWAY after ping " + ping + ": " + new String(body, 8, body.length - 8, StandardCharsets.UTF_8));
    }
    if (type == 4 && (flags & 1) == 0) {
      frame(out, 4, 1, new byte[0]); // acknowledges the server's SETTINGS
    }
    return type == 6 && (flags & 1) == 1 ? body : null;
  }

  private static void frame(DataOutputStream out, int type, int flags, byte[] payload) throws IOException {
    out.writeByte(payload.length >>> 16);
    out.writeShort(payload.length & 0xffff);
    out.writeByte(type);
    out.writeByte(flags);
    out.writeInt(0);
    out.write(payload);
    out.flush();
  }

  @Test
  void noDeleteFilterDropsDeletes() throws Exception {
    try (var s = new Stream()) {
      long id = s.create(WatchCreateRequest.newBuilder().setKey(bs("/nd/")).setRangeEnd(bs("/nd0"))
          .addFilters(WatchCreateRequest.FilterType.NODELETE));
      put("/nd/a", "1");
      kv.deleteRange(DeleteRangeRequest.newBuilder().setKey(bs("/nd/a")).build());
      put("/nd/b", "2");
      var events = new ArrayList<String>();
      while (!events.contains("PUT /nd/b")) {
        WatchResponse r = s.next();
        assertEquals(id, r.getWatchId());
        r.getEventsList().forEach(e -> events.add(e.getType() + " " + e.getKv().getKey().toStringUtf8()));
      }
      assertEquals(List.of("PUT /nd/a", "PUT /nd/b"), events);
    }
  }

  /** Periodic progress notifications go to the watches that asked for them, and only to those. */
  @Test
  void progressNotificationsGoToWatchesThatAskedForThem() throws Exception {
    put("/pn/k", "1");
    etcd.store().watches().progressInterval(Duration.ofMillis(200));
    try (var s = new Stream()) {
      long asked = s.create(WatchCreateRequest.newBuilder().setKey(bs("/pn/k")).setProgressNotify(true));
      long quiet = s.create(WatchCreateRequest.newBuilder().setKey(bs("/pn/other")));
      long rev = kv.range(RangeRequest.newBuilder().setKey(bs("/pn/k")).build()).getHeader().getRevision();
      for (int i = 0; i < 2; i++) {
        WatchResponse r = s.next();
        assertEquals(asked, r.getWatchId(), "only the watch that asked: " + r);
        assertTrue(r.getEventsCount() == 0 && !r.getCreated() && !r.getCanceled() && r.getCompactRevision() == 0, r.toString());
        assertTrue(r.getHeader().getRevision() >= rev, r + " before " + rev);
      }
      assertNotEquals(asked, quiet);
    } finally {
      etcd.store().watches().progressInterval(Duration.ofMinutes(10));
    }
  }

  /** One stream carries several watches: each event goes to every watch whose range holds it, by id. */
  @Test
  void severalWatchesShareOneStream() throws Exception {
    try (var s = new Stream()) {
      long a = s.create(WatchCreateRequest.newBuilder().setKey(bs("/m/a")));
      long b = s.create(WatchCreateRequest.newBuilder().setKey(bs("/m/b")));
      long all = s.create(WatchCreateRequest.newBuilder().setKey(bs("/m/")).setRangeEnd(bs("/m0")));
      assertEquals(3, java.util.Set.of(a, b, all).size(), "distinct ids");
      var seen = new java.util.HashMap<Long, List<String>>();
      put("/m/a", "1");
      put("/m/b", "2");
      collect(s, seen, 4);
      assertEquals(List.of("/m/a=1"), seen.get(a));
      assertEquals(List.of("/m/b=2"), seen.get(b));
      assertEquals(List.of("/m/a=1", "/m/b=2"), seen.get(all));

      s.requests.onNext(WatchRequest.newBuilder().setCancelRequest(WatchCancelRequest.newBuilder().setWatchId(all)).build());
      WatchResponse canceled = s.next();
      assertTrue(canceled.getCanceled() && canceled.getWatchId() == all, canceled.toString());
      put("/m/a", "3");
      put("/m/b", "4");
      collect(s, seen, 2);
      assertEquals(List.of("/m/a=1", "/m/a=3"), seen.get(a));
      assertEquals(List.of("/m/b=2", "/m/b=4"), seen.get(b));
      assertEquals(List.of("/m/a=1", "/m/b=2"), seen.get(all), "nothing after its cancel");
    }
  }

  private static void collect(Stream s, java.util.Map<Long, List<String>> seen, int events) throws InterruptedException {
    for (int n = 0; n < events; ) {
      WatchResponse r = s.next();
      for (var e : r.getEventsList()) {
        seen.computeIfAbsent(r.getWatchId(), k -> new ArrayList<>())
            .add(e.getKv().getKey().toStringUtf8() + "=" + e.getKv().getValue().toStringUtf8());
        n++;
      }
    }
  }
}
