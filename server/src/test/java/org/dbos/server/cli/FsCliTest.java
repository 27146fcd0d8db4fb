package org.dbos.server.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.dbos.kernel.Node;
import org.dbos.kernel.files.Names;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `dbos fs …` in process, against a test node's database, as a client would run it. */
class FsCliTest {
  static Node node;
  static List<String> conn;

  @TempDir
  static Path dir;

  @BeforeAll
  static void boot() throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    node = TestNode.boot(db);
    Path dbPw = Files.writeString(dir.resolve("db.pw"), db.password());
    Path adminPw = Files.writeString(dir.resolve("admin.pw"), node.dataDirectory().adminCredential().orElseThrow());
    conn = List.of("--db", db.url(), "--db-user", db.user(), "--db-password-file", dbPw.toString(),
        "--password-file", adminPw.toString());
  }

  @AfterAll
  static void close() {
    node.close();
  }

  /** What a run printed: standard output as UTF-8 text and as its bytes ({@code raw}), standard error as text. */
  record Out(int exit, String out, String err, byte[] raw) {}

  static synchronized Out dbos(String... args) {
    var all = new ArrayList<>(List.of(args));
    all.addAll(conn);
    PrintStream out = System.out;
    PrintStream err = System.err;
    var o = new ByteArrayOutputStream();
    var e = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
      int exit = Main.run(all.toArray(new String[0]));
      return new Out(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8), o.toByteArray());
    } finally {
      System.setOut(out);
      System.setErr(err);
    }
  }

  @Test
  void everyFsSubcommand() throws Exception {
    byte[] big = new byte[20 << 20];
    new Random(3).nextBytes(big);
    Path local = Files.write(dir.resolve("big.bin"), big);
    Files.createDirectories(dir.resolve("tree/sub"));
    Files.writeString(dir.resolve("tree/a.txt"), "alpha\n");
    Files.writeString(dir.resolve("tree/sub/b.txt"), "beta\n");

    assertEquals(0, dbos("fs", "mkdir", "-p", "/data/in").exit());
    Out put = dbos("fs", "put", local.toString(), "/data/in");
    assertEquals(0, put.exit());
    assertProgressBar("put big.bin", put.err());
    Out small = dbos("fs", "put", "-r", dir.resolve("tree").toString(), "/data");
    assertEquals(0, small.exit());
    assertEquals("", small.err(), "no progress bar for files under 8 MiB");
    assertEquals("a.txt\nsub\n", dbos("fs", "ls", "/data/tree").out());
    assertTrue(dbos("fs", "ls", "-l", "/data/in").out().contains(" 20971520 "), "ls -l shows the size");
    assertEquals("alpha\n", dbos("fs", "cat", "/data/tree/a.txt").out());
    assertTrue(dbos("fs", "stat", "/data/in/big.bin").out().contains("Size: 20971520"));
    Out get = dbos("fs", "get", "/data/in/big.bin", dir.resolve("back.bin").toString());
    assertEquals(0, get.exit());
    assertProgressBar("get /data/in/big.bin", get.err());
    Out getSmall = dbos("fs", "get", "/data/tree/a.txt", dir.resolve("a.txt").toString());
    assertEquals(0, getSmall.exit());
    assertEquals("", getSmall.err(), "no progress bar for files under 8 MiB");
    assertTrue(java.util.Arrays.equals(big, Files.readAllBytes(dir.resolve("back.bin"))));
    assertEquals(0, dbos("fs", "mv", "/data/tree/a.txt", "/data/tree/sub").exit());
    assertEquals("/data/tree/sub/a.txt\n/data/tree/sub/b.txt\n", dbos("fs", "find", "/data", "-name", "*.txt").out());
    assertEquals((20 << 20) + 11 + "\t/data\n", dbos("fs", "du", "/data").out());
    Out notEmpty = dbos("fs", "rm", "/data/tree");
    assertEquals(2, notEmpty.exit());
    assertEquals(1, notEmpty.err().lines().count(), notEmpty.err());
    assertEquals(0, dbos("fs", "rm", "-r", "/data/tree").exit());
    Out missing = dbos("fs", "cat", "/nope");
    assertEquals("dbos: ENOENT: /nope\n", missing.err());
    assertEquals(4, missing.exit());
    assertEquals("forgot 0 versions, 0 removed names, 0 chunks, 0 blobs\n", dbos("fs", "purge").out(),
        "the default keeps a week");
    Out purged = dbos("fs", "purge", "--keep", "0s"); // the removed tree's names, chunks and blobs
    assertEquals(0, purged.exit(), purged.err());
    assertTrue(purged.out().matches("forgot \\d+ versions, ([4-9]|\\d\\d+) removed names, ([2-9]|\\d\\d+) chunks, "
        + "([2-9]|\\d\\d+) blobs\n"), purged.out());
    assertEquals("forgot 0 versions, 0 removed names, 0 chunks, 0 blobs\n", dbos("fs", "purge", "--keep", "0s").out());
    Out bad = dbos("fs", "purge", "--keep", "soon");
    assertEquals(2, bad.exit());
    assertTrue(bad.err().contains("--keep wants a duration"), bad.err());
    Out check = dbos("fs", "check", "--data");
    assertEquals(0, check.exit(), check.out());
    assertTrue(check.out().endsWith("consistent\n"), check.out());
  }

  /**
   * Names are printed as their bytes (ls, find, du), as ls and find print them to a pipe; Java Strings
   * write the bytes that are not UTF-8 as U+DC80..U+DCFF ({@link Names}).
   */
  @Test
  void namesThatAreNotUtf8() {
    assertEquals(0, dbos("fs", "mkdir", "-p", "/bytes/caf\udce9", "/bytes/\udcff", "/bytes/\udcfe", "/bytes/café").exit());
    assertArrayEquals(Names.bytes("café\ncaf\udce9\n\udcfe\n\udcff\n"), dbos("fs", "ls", "/bytes").raw());
    assertArrayEquals(Names.bytes("/bytes/\udcfe\n"), dbos("fs", "find", "/bytes", "-type", "d", "-name", "*fe").raw());
    assertArrayEquals(Names.bytes("0\t/bytes/\udcff\n"), dbos("fs", "du", "/bytes/\udcff").raw());
    assertEquals(0, dbos("fs", "rm", "-r", "/bytes").exit());
  }

  /** A copy of 8 MiB or more shows a bar on stderr that ends full: "TASK 100% │█…│ 20/20MiB (…)". */
  static void assertProgressBar(String task, String err) {
    String last = err.substring(err.lastIndexOf('\r') + 1);
    assertTrue(last.startsWith(task + " 100% ") && last.contains(" 20/20MiB "), "a finished progress bar: " + err);
  }
}
