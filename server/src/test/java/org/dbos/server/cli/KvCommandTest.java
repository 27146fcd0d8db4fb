package org.dbos.server.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.dbos.kernel.kv.Kv;
import org.dbos.kernel.kv.KvStore;
import org.dbos.kernel.Node;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.Test;

/** `dbos kv get|put|del|watch` in-process against a test node's directory. */
class KvCommandTest {
  static String run(Node node, String... args) {
    var all = new String[args.length + 2];
    System.arraycopy(args, 0, all, 0, args.length);
    all[args.length] = "--data-dir";
    all[args.length + 1] = node.dataDirectory().root().toString();
    PrintStream old = System.out;
    var buf = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buf, true));
    try {
      assertEquals(0, Main.run(all), "dbos " + String.join(" ", args));
    } finally {
      System.setOut(old);
    }
    return buf.toString();
  }

  @Test
  void putGetDelete() {
    try (Node node = TestNode.boot()) {
      assertTrue(run(node, "kv", "put", "/cli/a", "1").startsWith("OK"));
      run(node, "kv", "put", "/cli/b", "2");
      assertEquals("/cli/a\n1\n/cli/b\n2\n", run(node, "kv", "get", "/cli/", "--prefix"));
      assertEquals("/cli/a\n", run(node, "kv", "get", "/cli/", "--prefix", "--keys-only", "--limit", "1"));
      assertEquals("2\n", run(node, "kv", "del", "/cli/", "--prefix"));
      assertEquals("", run(node, "kv", "get", "/cli/a"));
    }
  }

  /** `dbos kv watch --prefix` prints each change committed while it runs, as etcdctl watch does. */
  @Test
  void watchPrintsChangesMadeWhileItRuns() throws Exception {
    try (Node node = TestNode.boot(); KvStore kv = KvStore.client(node.kernel())) {
      var session = node.kernel().system();
      byte[] key = "/cw/a".getBytes(StandardCharsets.UTF_8);
      kv.put(session, new Kv.PutRequest("/cw/before".getBytes(StandardCharsets.UTF_8), new byte[] {'0'}, 0, false, false, false));
      PrintStream old = System.out;
      var buf = new ByteArrayOutputStream();
      System.setOut(new PrintStream(buf, true));
      Thread watch = Thread.ofPlatform().start(() ->
          Main.run("kv", "watch", "/cw/", "--prefix", "--data-dir", node.dataDirectory().root().toString()));
      try {
        // puts until one lands after the watch started (an earlier one is not shown)
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (!buf.toString().contains("PUT\n/cw/a\nv\n") && System.nanoTime() < deadline) {
          kv.put(session, new Kv.PutRequest(key, new byte[] {'v'}, 0, false, false, false));
          Thread.sleep(200);
        }
        kv.delete(session, new Kv.DeleteRequest(key, new byte[0], false));
        kv.put(session, new Kv.PutRequest("/other".getBytes(StandardCharsets.UTF_8), new byte[] {'x'}, 0, false, false, false));
        while (!buf.toString().contains("DELETE\n/cw/a\n") && System.nanoTime() < deadline) {
          Thread.sleep(50);
        }
      } finally {
        watch.interrupt();
        watch.join(10_000);
        System.setOut(old);
      }
      String out = buf.toString();
      assertTrue(out.contains("PUT\n/cw/a\nv\n"), out);
      assertTrue(out.contains("DELETE\n/cw/a\n"), out);
      assertFalse(out.contains("/cw/before") || out.contains("/other"), out);
      assertFalse(watch.isAlive(), "dbos kv watch ends when interrupted");
    }
  }
}
