package org.dbos.server.etcd;

import static org.junit.jupiter.api.Assertions.*;

import com.google.protobuf.ByteString;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.dbos.kernel.Node;
import org.dbos.kernel.kv.Kv;
import org.dbos.kernel.kv.KvStore;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.dbos.server.etcd.api.KVGrpc;
import org.dbos.server.etcd.api.PutRequest;
import org.junit.jupiter.api.Test;

/** SIGKILL of a node serving the etcd API loses no acknowledged write. */
class KillNineTest {
  /** The child: a node on the given database serving the etcd API; prints its port. */
  public static void main(String[] args) throws Exception {
    var db = new TestDatabase.Url(args[0], args[1], args[2], "child");
    Node node = TestNode.boot(db);
    EtcdServer etcd = EtcdServer.start(node.kernel(), "127.0.0.1", 0);
    System.out.println("PORT " + etcd.port());
    System.out.flush();
    Thread.currentThread().join();
  }

  @Test
  void acknowledgedPutsSurviveKillNine() throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    String javaBin = ProcessHandle.current().info().command().orElse("java");
    Process child = new ProcessBuilder(javaBin, "--enable-native-access=ALL-UNNAMED", "-cp",
        System.getProperty("java.class.path"), KillNineTest.class.getName(), db.url(), db.user(), db.password())
        .redirectErrorStream(true).start();
    var acked = java.util.Collections.synchronizedList(new ArrayList<String>());
    try {
      var out = new BufferedReader(new InputStreamReader(child.getInputStream()));
      int port = -1;
      for (String line; (line = out.readLine()) != null; ) {
        if (line.startsWith("PORT ")) {
          port = Integer.parseInt(line.substring(5));
          break;
        }
      }
      assertTrue(port > 0, "child did not start");
      Thread.ofPlatform().daemon().start(() -> out.lines().forEach(l -> { }));
      var channel = NettyChannelBuilder.forTarget("127.0.0.1:" + port).usePlaintext().build();
      var stop = new AtomicBoolean();
      var writers = new ArrayList<Thread>();
      for (int w = 0; w < 8; w++) {
        int id = w;
        writers.add(Thread.ofPlatform().start(() -> {
          var kv = KVGrpc.newBlockingStub(channel);
          for (int i = 0; !stop.get(); i++) {
            String key = "/k9/" + id + "/" + i;
            try {
              kv.withDeadlineAfter(5, TimeUnit.SECONDS).put(PutRequest.newBuilder().setKey(ByteString.copyFromUtf8(key))
                  .setValue(ByteString.copyFromUtf8("v")).build());
              acked.add(key);
            } catch (RuntimeException e) {
              return; // the node died under this call: not acknowledged
            }
          }
        }));
      }
      long deadline = System.nanoTime() + 20_000_000_000L;
      while (acked.size() < 300) {
        assertTrue(System.nanoTime() < deadline, "writes are flowing: " + acked.size());
        Thread.sleep(10);
      }
      child.toHandle().destroyForcibly(); // SIGKILL
      assertTrue(child.waitFor(30, TimeUnit.SECONDS));
      stop.set(true);
      for (Thread t : writers) {
        t.join();
      }
      channel.shutdownNow();
    } finally {
      child.destroyForcibly();
    }
    List<String> ackedKeys = List.copyOf(acked);
    try (Node node = TestNode.boot(db)) {
      KvStore kv = KvStore.client(node.kernel());
      var all = kv.range(node.kernel().system(), Kv.RangeRequest.of("/k9/".getBytes(), "/k90".getBytes()));
      var present = new java.util.HashSet<String>();
      all.kvs().forEach(k -> present.add(new String(k.key())));
      for (String k : ackedKeys) {
        assertTrue(present.contains(k), "acknowledged put lost: " + k);
      }
      kv.close();
    }
  }
}
