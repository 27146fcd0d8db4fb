package org.dbos.server.etcd;

import static org.junit.jupiter.api.Assertions.*;

import com.google.protobuf.ByteString;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.Node;
import org.dbos.kernel.testing.TestNode;
import org.dbos.server.etcd.api.*;
import org.junit.jupiter.api.Test;

/**
 * A watcher whose client stops reading: the server stops sending when the stream is not ready, keeps
 * serving writes, and once the client reads again delivers every event, in order, from history.
 */
class SlowWatcherTest {
  @Test
  void aStalledWatcherCatchesUpFromHistoryWithoutLosingEvents() throws Exception {
    try (Node node = TestNode.boot(); EtcdServer etcd = EtcdServer.start(node.kernel(), "127.0.0.1", 0)) {
      var channel = NettyChannelBuilder.forTarget(etcd.address()).usePlaintext().build();
      try {
        var kv = KVGrpc.newBlockingStub(channel);
        long start = kv.put(PutRequest.newBuilder().setKey(ByteString.copyFromUtf8("/slow/k"))
            .setValue(ByteString.copyFromUtf8("first")).build()).getHeader().getRevision();
        int n = 300;
        var revisions = new ArrayList<Long>();
        var done = new CountDownLatch(1);
        var call = new ClientCallStreamObserver[1];
        var obs = new ClientResponseObserver<WatchRequest, WatchResponse>() {
          @Override
          public void beforeStart(ClientCallStreamObserver<WatchRequest> s) {
            call[0] = s;
            s.disableAutoRequestWithInitial(1); // read only the "created" response for now
          }

          @Override
          public void onNext(WatchResponse r) {
            synchronized (revisions) {
              r.getEventsList().forEach(e -> revisions.add(e.getKv().getModRevision()));
              if (revisions.size() >= n + 1) {
                done.countDown();
              }
            }
          }

          @Override
          public void onError(Throwable t) {}

          @Override
          public void onCompleted() {}
        };
        var req = WatchGrpc.newStub(channel).watch(obs);
        req.onNext(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
            .setKey(ByteString.copyFromUtf8("/slow/")).setRangeEnd(ByteString.copyFromUtf8("/slow0"))
            .setStartRevision(start)).build());
        byte[] value = new byte[16 * 1024]; // 4.8 MB in all: far beyond the stream's flow-control window
        for (int i = 0; i < n; i++) {
          kv.put(PutRequest.newBuilder().setKey(ByteString.copyFromUtf8("/slow/k"))
              .setValue(ByteString.copyFrom(value)).build());
        }
        call[0].request(Integer.MAX_VALUE); // the client reads again
        assertTrue(done.await(30, TimeUnit.SECONDS), "events received: " + revisions.size());
        List<Long> got;
        synchronized (revisions) {
          got = List.copyOf(revisions);
        }
        for (int i = 0; i < got.size(); i++) {
          assertEquals(start + i, got.get(i), "event " + i);
        }
        req.onCompleted();
      } finally {
        channel.shutdownNow();
      }
    }
  }
}
