package org.dbos.server.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import org.dbos.kernel.Node;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.Test;

/** `dbos kv get|put|del` in-process against a test node's directory. */
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
}
