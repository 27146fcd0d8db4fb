package org.dbos.kernel.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Node;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The FileSystem API against the POSIX semantics of the local disk (ext4 here), side by side: the
 * same operations on a temp directory and on DBFS must give the same results and errors.
 */
class FileSystemTest {
  static Node node;
  static Kernel kernel;
  static FileSystem fs;
  static Session root;

  @TempDir
  Path disk;

  @BeforeAll
  static void boot() {
    node = TestNode.boot();
    kernel = node.kernel();
    fs = FileSystem.of(kernel);
    root = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
  }

  @AfterAll
  static void close() {
    node.close();
  }

  static Session user(String name, int uid, int gid) {
    kernel.principals().create(root, name, "user", "pw-" + name, uid, gid, false);
    return kernel.login(name, "pw-" + name);
  }

  /** Runs an operation and names its outcome: "ok" or the errno. */
  static String outcome(Runnable op) {
    try {
      op.run();
      return "ok";
    } catch (FsException e) {
      return e.errno().name();
    }
  }

  interface DiskOp {
    void run() throws IOException;
  }

  /** The errno the local disk answered, from the JDK's exception (it carries strerror text). */
  static String diskOutcome(DiskOp op) {
    try {
      op.run();
      return "ok";
    } catch (NoSuchFileException e) {
      return "ENOENT";
    } catch (FileAlreadyExistsException e) {
      return "EEXIST";
    } catch (DirectoryNotEmptyException e) {
      return "ENOTEMPTY";
    } catch (AccessDeniedException e) {
      return "EACCES";
    } catch (FileSystemException e) {
      String r = String.valueOf(e.getReason());
      if (r.contains("Not a directory")) {
        return "ENOTDIR";
      }
      if (r.contains("Is a directory")) {
        return "EISDIR";
      }
      if (r.contains("Invalid argument")) {
        return "EINVAL";
      }
      if (r.contains("not empty")) {
        return "ENOTEMPTY";
      }
      if (r.contains("File exists")) {
        return "EEXIST";
      }
      return r;
    } catch (IOException e) {
      return e.toString();
    }
  }

  static void put(String path, String content) {
    FileHandle h = fs.create(root, path, 0644);
    byte[] b = content.getBytes(StandardCharsets.UTF_8);
    fs.write(root, h, 0, b, 0, b.length);
    fs.close(h);
  }

  static String get(String path) {
    FileHandle h = fs.open(root, path, FileSystem.O_RDONLY, 0);
    try {
      return new String(fs.read(root, h, 0, 1 << 20), StandardCharsets.UTF_8);
    } finally {
      fs.close(h);
    }
  }

  @Test
  void writesAtOffsetsSparseFilesAndTruncateMatchTheLocalDisk() throws Exception {
    fs.mkdir(root, "/io", 0755);
    Random rnd = new Random(7);
    int cs = FileSystem.DEFAULT_CHUNK_SIZE;
    long[][] writes = {{0, 100}, {5000, 3000}, {cs - 10, 20}, {3L * cs + 17, cs + 5}, {10L * cs, 1}, {2, 3}};
    Path local = disk.resolve("sparse");
    FileHandle h = fs.open(root, "/io/sparse", FileSystem.O_CREAT | FileSystem.O_RDWR, 0644);
    try (var raf = new RandomAccessFile(local.toFile(), "rw")) {
      for (long[] w : writes) {
        byte[] b = new byte[(int) w[1]];
        rnd.nextBytes(b);
        raf.seek(w[0]);
        raf.write(b);
        fs.write(root, h, w[0], b, 0, b.length);
      }
      assertArrayEquals(Files.readAllBytes(local), fs.read(root, h, 0, (int) raf.length() + 100));
      // holes read as zeros, reads across chunk boundaries and past the end
      assertArrayEquals(slice(local, 4L * cs + 100, 2 * cs), fs.read(root, h, 4L * cs + 100, 2 * cs));
      assertEquals(0, fs.read(root, h, raf.length() + 5, 10).length);
      // shrink into a chunk, then grow: the cut bytes must read as zeros
      raf.setLength(3L * cs + 40);
      fs.truncate(root, h, 3L * cs + 40);
      raf.setLength(5L * cs);
      fs.truncate(root, "/io/sparse", 5L * cs);
      assertArrayEquals(Files.readAllBytes(local), fs.read(root, h, 0, 6 * cs));
      assertEquals(5L * cs, fs.stat(root, "/io/sparse", true).size());
    } finally {
      fs.close(h);
    }
    // append goes to the end whatever the offset
    FileHandle a = fs.open(root, "/io/log", FileSystem.O_CREAT | FileSystem.O_WRONLY | FileSystem.O_APPEND, 0644);
    fs.write(root, a, 0, "one ".getBytes(), 0, 4);
    fs.write(root, a, 0, "two".getBytes(), 0, 3);
    fs.close(a);
    assertEquals("one two", get("/io/log"));
    assertTrue(fs.check(root, true).ok(), () -> fs.check(root, true).problems().toString());
  }

  static byte[] slice(Path p, long off, int len) throws IOException {
    try (var raf = new RandomAccessFile(p.toFile(), "r")) {
      long n = Math.max(0, Math.min(len, raf.length() - off));
      byte[] b = new byte[(int) n];
      raf.seek(off);
      raf.readFully(b);
      return b;
    }
  }

  @Test
  void renameEdgeCasesMatchExt4() throws Exception {
    String[] dirs = {"/r", "/r/a", "/r/a/sub", "/r/b", "/r/full", "/r/full/x", "/r/empty"};
    for (String d : dirs) {
      fs.mkdir(root, d, 0755);
      Files.createDirectory(disk.resolve(d.substring(1)));
    }
    for (String f : new String[] {"/r/f1", "/r/f2", "/r/a/f3"}) {
      put(f, f);
      Files.writeString(disk.resolve(f.substring(1)), f);
    }
    String[][] renames = {
        {"/r/f1", "/r/f2"},          // file over file: replaces
        {"/r/a", "/r/a/sub/in"},     // directory into its own subtree: EINVAL
        {"/r/a", "/r/a"},            // onto itself: no-op
        {"/r/a", "/r/full"},         // directory over non-empty directory: ENOTEMPTY
        {"/r/a", "/r/empty"},        // directory over empty directory: replaces
        {"/r/f2", "/r/b"},           // file over directory: EISDIR
        {"/r/b", "/r/empty/f3"},     // directory over file: ENOTDIR
        {"/r/missing", "/r/z"},      // ENOENT
        {"/r/f2", "/r/nodir/z"},     // target parent missing: ENOENT
        {"/r/f2/x", "/r/z"},         // file used as directory: ENOTDIR
        {"/r/empty", "/r/b/moved"},  // directory moves to another parent
    };
    for (String[] r : renames) {
      Path from = disk.resolve(r[0].substring(1));
      Path to = disk.resolve(r[1].substring(1));
      String expected = diskOutcome(() -> Files.move(from, to, StandardCopyOption.ATOMIC_MOVE));
      assertEquals(expected, outcome(() -> fs.rename(root, r[0], r[1])), "rename " + r[0] + " " + r[1]);
    }
    assertEquals(tree(disk.resolve("r")), tree("/r"));
    assertEquals("/r/f1", get("/r/f2"));
    assertEquals(Files.getAttribute(disk.resolve("r"), "unix:nlink"), fs.stat(root, "/r", true).nlink());
    assertEquals(Files.getAttribute(disk.resolve("r/b"), "unix:nlink"), fs.stat(root, "/r/b", true).nlink());
    assertTrue(fs.check(root, false).ok(), () -> fs.check(root, false).problems().toString());
  }

  /** A listing of a local tree: "path kind nlink size" per entry, sorted. */
  static List<String> tree(Path dir) throws IOException {
    try (var s = Files.walk(dir)) {
      return s.filter(p -> !p.equals(dir)).map(p -> {
        try {
          boolean d = Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS);
          return dir.relativize(p) + (d ? " d " : " f ") + Files.getAttribute(p, "unix:nlink",
              java.nio.file.LinkOption.NOFOLLOW_LINKS) + " " + (d ? 0 : Files.size(p));
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      }).sorted().toList();
    }
  }

  static List<String> tree(String dir) {
    var out = new ArrayList<String>();
    walk(dir, "", out::add);
    out.sort(null);
    return out;
  }

  static void walk(String dir, String rel, Consumer<String> out) {
    for (DirEntry e : fs.list(root, dir)) {
      String r = rel.isEmpty() ? e.name() : rel + "/" + e.name();
      boolean d = e.stat().isDirectory();
      out.accept(r + (d ? " d " : " f ") + e.stat().nlink() + " " + (d ? 0 : e.stat().size()));
      if (d) {
        walk(dir + "/" + e.name(), r, out);
      }
    }
  }

  @Test
  void namedPipesAndSocketsAreInodesWithoutContent() {
    fs.mkdir(root, "/sp", 0755);
    Stat fifo = fs.mknod(root, "/sp/fifo", Stat.Kind.FIFO, 0640);
    assertEquals(Stat.Kind.FIFO, fifo.kind());
    assertEquals(0010640, fs.stat(root, "/sp/fifo", false).posixMode());
    assertEquals(0140755, fs.mknod(root, "/sp/sock", Stat.Kind.SOCKET, 0755).posixMode());
    assertEquals("EEXIST", outcome(() -> fs.mknod(root, "/sp/fifo", Stat.Kind.FIFO, 0640)));
    assertEquals("EINVAL", outcome(() -> fs.mknod(root, "/sp/file", Stat.Kind.FILE, 0640)));
    assertEquals("ENXIO", outcome(() -> fs.open(root, "/sp/fifo", FileSystem.O_RDONLY, 0)));
    assertEquals("EINVAL", outcome(() -> fs.truncate(root, "/sp/sock", 0)));
    fs.rename(root, "/sp/fifo", "/sp/pipe");
    fs.link(root, "/sp/pipe", "/sp/pipe2");
    assertEquals(2, fs.stat(root, "/sp/pipe2", false).nlink());
    fs.unlink(root, "/sp/sock");
    assertEquals(List.of("pipe", "pipe2"), fs.list(root, "/sp").stream().map(DirEntry::name).toList());
    assertTrue(fs.check(root, false).ok(), () -> fs.check(root, false).problems().toString());
  }

  @Test
  void unlinkedOpenFileStaysReadableUntilClosed() {
    fs.mkdir(root, "/u", 0755);
    put("/u/f", "still here");
    FileHandle h = fs.open(root, "/u/f", FileSystem.O_RDWR, 0);
    fs.unlink(root, "/u/f");
    assertEquals("ENOENT", outcome(() -> fs.stat(root, "/u/f", false)));
    assertEquals("still here", new String(fs.read(root, h, 0, 100)));
    fs.write(root, h, 0, "STILL".getBytes(), 0, 5);
    assertEquals("STILL here", new String(fs.read(root, h, 0, 100)));
    assertTrue(fs.check(root, false).ok(), () -> fs.check(root, false).problems().toString());
    long ino = h.ino();
    fs.close(h);
    long left = kernel.database().transaction(c -> {
      var rs = c.createStatement().executeQuery("SELECT count(*) FROM fs_inodes WHERE ino = " + ino);
      rs.next();
      return rs.getLong(1);
    });
    assertEquals(0, left);
    assertTrue(fs.check(root, false).ok(), () -> fs.check(root, false).problems().toString());
  }

  @Test
  void hardLinksAndSymlinksMatchExt4() throws Exception {
    fs.mkdir(root, "/l", 0755);
    Files.createDirectory(disk.resolve("l"));
    put("/l/a", "data");
    Files.writeString(disk.resolve("l/a"), "data");
    fs.link(root, "/l/a", "/l/b");
    Files.createLink(disk.resolve("l/b"), disk.resolve("l/a"));
    fs.link(root, "/l/b", "/l/c");
    Files.createLink(disk.resolve("l/c"), disk.resolve("l/b"));
    fs.unlink(root, "/l/a");
    Files.delete(disk.resolve("l/a"));
    assertEquals(Files.getAttribute(disk.resolve("l/b"), "unix:nlink"), fs.stat(root, "/l/b", false).nlink());
    assertEquals(diskOutcome(() -> Files.createLink(disk.resolve("l/d"), disk.resolve("l"))),
        outcome(() -> fs.link(root, "/l", "/l/d")).replace("EPERM", "Operation not permitted"));
    assertEquals(diskOutcome(() -> Files.createLink(disk.resolve("l/c"), disk.resolve("l/b"))),
        outcome(() -> fs.link(root, "/l/b", "/l/c")));
    fs.symlink(root, "b", "/l/s");
    Files.createSymbolicLink(disk.resolve("l/s"), Path.of("b"));
    assertEquals("b", fs.readlink(root, "/l/s"));
    assertEquals("data", get("/l/s"));
    assertTrue(fs.stat(root, "/l/s", false).isSymlink());
    assertEquals(4, fs.stat(root, "/l/s", true).size());
    fs.symlink(root, "/l/loop2", "/l/loop1");
    fs.symlink(root, "/l/loop1", "/l/loop2");
    assertEquals("ELOOP", outcome(() -> fs.stat(root, "/l/loop1", true)));
    fs.symlink(root, "..", "/l/up");
    assertEquals(fs.stat(root, "/", true).ino(), fs.stat(root, "/l/up/", true).ino());
    assertEquals("data", get("/l/up/l/up/l/b"));
    assertTrue(fs.check(root, false).ok(), () -> fs.check(root, false).problems().toString());
  }

  /**
   * A name is any bytes but '/' and NUL: those that are not UTF-8 are written U+DC80..U+DCFF (as
   * Python's os.fsdecode does), each its own entry, stored as exactly those bytes.
   */
  @Test
  void namesAreAnyBytes() {
    var rnd = new Random(7);
    for (int i = 0; i < 10_000; i++) {
      byte[] b = new byte[rnd.nextInt(8)];
      rnd.nextBytes(b);
      assertArrayEquals(b, Names.bytes(Names.string(b)));
    }
    byte[][] raw = {{(byte) 0xff}, {(byte) 0xfe}, {(byte) 0x80}, {(byte) 0xc0, (byte) 0xaf}, // overlong '/'
        {'c', 'a', 'f', (byte) 0xe9}, "café".getBytes(StandardCharsets.UTF_8), {(byte) 0xed, (byte) 0xa0, (byte) 0x80}};
    assertEquals("\udcff \udcc0\udcaf caf\udce9 café \udced\udca0\udc80",
        String.join(" ", Names.string(raw[0]), Names.string(raw[3]), Names.string(raw[4]), Names.string(raw[5]),
            Names.string(raw[6])));
    fs.mkdir(root, "/bytes", 0755);
    for (byte[] r : raw) {
      fs.close(fs.create(root, "/bytes/" + Names.string(r), 0644));
    }
    List<String> listed = fs.list(root, "/bytes").stream().map(DirEntry::name).sorted().toList();
    assertEquals(Arrays.stream(raw).map(Names::string).sorted().toList(), listed);
    assertEquals(raw.length, listed.stream().map(n -> fs.stat(root, "/bytes/" + n, false).ino()).distinct().count());
    fs.rename(root, "/bytes/\udcff", "/bytes/\udcff\udcff");
    fs.unlink(root, "/bytes/\udcfe");
    fs.symlink(root, "\udcfe/caf\udce9", "/bytes/l\udc80");
    assertEquals("\udcfe/caf\udce9", fs.readlink(root, "/bytes/l\udc80"));
    fs.mkdir(root, "/bytes/\udcfe", 0755);
    fs.close(fs.create(root, "/bytes/\udcfe/caf\udce9", 0600));
    assertEquals(0600, fs.stat(root, "/bytes/l\udc80", true).mode());
    List<String> stored = kernel.database().transaction(c -> {
      var st = c.prepareStatement("SELECT encode(d.name, 'hex'), encode(i.target, 'hex') FROM fs_dentries d "
          + "JOIN fs_inodes i USING (ino) WHERE d.parent = (SELECT ino FROM fs_dentries WHERE parent = 1 AND name = 'bytes') "
          + "ORDER BY d.name");
      var rs = st.executeQuery();
      var out = new ArrayList<String>();
      while (rs.next()) {
        out.add(rs.getString(1) + (rs.getString(2) == null ? "" : " -> " + rs.getString(2)));
      }
      return out;
    });
    assertEquals(List.of("636166c3a9", "636166e9", "6c80 -> fe2f636166e9", "80", "c0af", "eda080", "fe", "ffff"), stored);
    assertEquals(List.of("fs.rename file:/bytes/\\xff"), kernel.database().transaction(c -> {
      var rs = c.createStatement().executeQuery("SELECT call || ' ' || object FROM audit WHERE call = 'fs.rename' "
          + "AND object LIKE 'file:/bytes/%'");
      var out = new ArrayList<String>();
      while (rs.next()) {
        out.add(rs.getString(1));
      }
      return out;
    }), "the audit log's object is text: bytes that are not UTF-8 as \\xNN");
    // a String that is not the one of any bytes names nothing
    assertEquals("EINVAL", outcome(() -> fs.mkdir(root, "/bytes/\ud800", 0755)));
    assertEquals("EINVAL", outcome(() -> fs.mkdir(root, "/bytes/\udc41", 0755)));
    assertEquals("EINVAL", outcome(() -> fs.mkdir(root, "/bytes/caf\udcc3\udca9", 0755))); // the bytes of "café"
    assertTrue(fs.check(root, false).ok(), () -> fs.check(root, false).problems().toString());
  }

  @Test
  void namesAndDotDot() {
    fs.mkdir(root, "/n", 0755);
    String max = "x".repeat(255);
    assertEquals("ok", outcome(() -> fs.mkdir(root, "/n/" + max, 0755)));
    assertEquals("ENAMETOOLONG", outcome(() -> fs.mkdir(root, "/n/" + max + "y", 0755)));
    assertEquals("ok", outcome(() -> put("/n/wëird name\twith\u0001bytes", "x")));
    assertEquals(fs.stat(root, "/", true).ino(), fs.stat(root, "/../../..", true).ino());
    assertEquals(fs.stat(root, "/n", true).ino(), fs.stat(root, "/../n/./" + max + "/..", true).ino());
    assertEquals("EEXIST", outcome(() -> fs.mkdir(root, "/n", 0755)));
    assertEquals("ENOTEMPTY", outcome(() -> fs.rmdir(root, "/n")));
    assertEquals("EBUSY", outcome(() -> fs.rmdir(root, "/")));
    assertEquals("EINVAL", outcome(() -> fs.stat(root, "relative", true)));
    assertEquals("EISDIR", outcome(() -> fs.open(root, "/n", FileSystem.O_WRONLY, 0)));
    assertEquals("EISDIR", outcome(() -> fs.unlink(root, "/n")));
    assertEquals("ENOTDIR", outcome(() -> fs.rmdir(root, "/n/wëird name\twith\u0001bytes")));
    assertEquals("ENOTDIR", outcome(() -> fs.stat(root, "/n/wëird name\twith\u0001bytes/", true)));
  }

  @Test
  void aWriteOrTruncateByACallerOtherThanRootClearsSetUserIdAsLinuxDoes() {
    Session sue = user("sue", 2401, 2401);
    Session walt = user("walt", 2402, 2402);
    fs.mkdir(root, "/suid", 01777);
    int[] modes = {04777, 02777, 02767, 06777, 04777, 02767, 04777, 04777};
    String[] names = {"known", "append", "middle", "truncated", "byRoot", "ownSgid", "ownSuid", "openTrunc"};
    for (int i = 0; i < names.length; i++) {
      fs.createFile(sue, "/suid/" + names[i], 0666, "aa".getBytes());
      fs.chmod(sue, "/suid/" + names[i], modes[i]);
    }
    FileHandle h = fs.open(walt, "/suid/known", FileSystem.O_WRONLY, 0); // the whole file: one statement
    fs.write(walt, h, 0, "bbb".getBytes(), 0, 3);
    fs.close(h);
    h = fs.open(walt, "/suid/append", FileSystem.O_WRONLY | FileSystem.O_APPEND, 0);
    fs.write(walt, h, 0, "b".getBytes(), 0, 1);
    fs.close(h);
    h = fs.open(walt, "/suid/middle", FileSystem.O_WRONLY, 0); // part of a chunk: the general way
    fs.write(walt, h, 1, "b".getBytes(), 0, 1);
    fs.close(h);
    fs.truncate(walt, "/suid/truncated", 1);
    h = fs.open(walt, "/suid/openTrunc", FileSystem.O_WRONLY | FileSystem.O_TRUNC, 0);
    assertEquals(0777, h.opened().mode(), "open with O_TRUNC answers with the mode it left");
    fs.close(h);
    h = fs.open(root, "/suid/byRoot", FileSystem.O_WRONLY, 0);
    fs.write(root, h, 1, "b".getBytes(), 0, 1);
    fs.close(h);
    for (String own : List.of("/suid/ownSgid", "/suid/ownSuid")) {
      h = fs.open(sue, own, FileSystem.O_WRONLY, 0);
      fs.write(sue, h, 1, "b".getBytes(), 0, 1);
      fs.close(h);
    }
    assertEquals(0777, fs.stat(root, "/suid/known", false).mode());
    assertEquals(0777, fs.stat(root, "/suid/append", false).mode(), "set-group-ID goes when the group may execute");
    assertEquals(0767, fs.stat(root, "/suid/middle", false).mode(), "or when the writer is not in the file's group");
    assertEquals(02767, fs.stat(root, "/suid/ownSgid", false).mode(), "else it stays");
    assertEquals(0777, fs.stat(root, "/suid/ownSuid", false).mode(), "the owner's write clears set-user-ID too");
    assertEquals(0777, fs.stat(root, "/suid/truncated", false).mode());
    assertEquals(0777, fs.stat(root, "/suid/openTrunc", false).mode());
    assertEquals(04777, fs.stat(root, "/suid/byRoot", false).mode(), "root keeps them");
    // as open, write and close would: the write clears what the create asked for
    assertEquals(0755, fs.createFile(sue, "/suid/new", 04755, "x".getBytes()).mode());
    assertEquals(04755, fs.createFile(sue, "/suid/empty", 04755, new byte[0]).mode());
  }

  @Test
  void permissionsPerUser() {
    Session alice = user("alice", 2001, 2001);
    Session bob = user("bob", 2002, 2002);
    fs.mkdir(root, "/home", 0755);
    fs.mkdir(root, "/home/alice", 0755);
    fs.chown(root, "/home/alice", 2001, 2001, true);
    FileHandle h = fs.open(alice, "/home/alice/secret", FileSystem.O_CREAT | FileSystem.O_WRONLY, 0600);
    fs.write(alice, h, 0, "s".getBytes(), 0, 1);
    fs.close(h);
    Stat st = fs.stat(alice, "/home/alice/secret", false);
    assertEquals(2001, st.uid());
    assertEquals(2001, st.gid());
    assertEquals("EACCES", outcome(() -> fs.open(bob, "/home/alice/secret", FileSystem.O_RDONLY, 0)));
    assertEquals("EACCES", outcome(() -> fs.mkdir(bob, "/home/alice/x", 0755)));
    assertEquals("EACCES", outcome(() -> fs.unlink(bob, "/home/alice/secret")));
    assertEquals("EPERM", outcome(() -> fs.chmod(bob, "/home/alice/secret", 0777)));
    assertEquals("EPERM", outcome(() -> fs.chown(alice, "/home/alice/secret", 2002, -1, true)));
    assertEquals("EPERM", outcome(() -> fs.utimens(bob, "/home/alice", java.time.Instant.EPOCH, null, true)));
    assertEquals("ok", outcome(() -> fs.open(root, "/home/alice/secret", FileSystem.O_RDWR, 0)));
    fs.chmod(alice, "/home/alice/secret", 0644);
    assertEquals("ok", outcome(() -> fs.close(fs.open(bob, "/home/alice/secret", FileSystem.O_RDONLY, 0))));
    assertEquals("EACCES", outcome(() -> fs.open(bob, "/home/alice/secret", FileSystem.O_WRONLY, 0)));
    fs.chmod(alice, "/home/alice", 0700); // no search permission for bob
    assertEquals("EACCES", outcome(() -> fs.stat(bob, "/home/alice/secret", false)));
    // sticky /tmp: bob may not remove alice's file there
    fs.mkdir(root, "/tmp", 01777);
    fs.close(fs.open(alice, "/tmp/a", FileSystem.O_CREAT | FileSystem.O_WRONLY, 0666));
    assertEquals("EPERM", outcome(() -> fs.unlink(bob, "/tmp/a")));
    assertEquals("ok", outcome(() -> fs.unlink(alice, "/tmp/a")));
    // each refusal is audited (the kernel records a body's refusal as an error whose detail is PERMISSION_DENIED)
    long denied = kernel.database().transaction(c -> {
      var rs = c.createStatement().executeQuery(
          "SELECT count(*) FROM audit WHERE principal = 'bob' AND call LIKE 'fs.%' AND outcome <> 'ok'"
          + " AND (outcome = 'denied' OR detail LIKE 'PERMISSION_DENIED: E%')");
      rs.next();
      return rs.getLong(1);
    });
    assertTrue(denied >= 4, "denied calls audited: " + denied);
  }

  /**
   * A create or write that goes by what the file system last saw (the inodes on the way to a
   * directory, a handle's inode) must notice every change made since: by another handle, a chmod, a
   * rename, a directory made anew under the same name. Each call is still one audited call.
   */
  @Test
  void knownDirectoriesAndHandlesNoticeChanges() {
    Session kim = user("kim", 2009, 2009);
    fs.mkdir(root, "/k", 0777);
    put("/k/first", "1"); // the way to /k is known from here on
    FileHandle early = fs.open(root, "/k/first", FileSystem.O_WRONLY, 0);
    byte[] big = "b".repeat(4096).getBytes(StandardCharsets.UTF_8);
    FileHandle other = fs.open(root, "/k/first", FileSystem.O_WRONLY, 0);
    fs.write(root, other, 0, big, 0, big.length);
    fs.write(root, early, 0, "ee".getBytes(StandardCharsets.UTF_8), 0, 2); // early saw the old version
    assertEquals("ee" + "b".repeat(4094), get("/k/first"));
    fs.close(other);
    fs.chmod(root, "/k", 0700); // kim may no longer create in /k
    assertEquals("EACCES", outcome(() -> fs.close(fs.create(kim, "/k/nope", 0644))));
    fs.chmod(root, "/k", 0777);
    fs.write(root, early, 2, "e".getBytes(StandardCharsets.UTF_8), 0, 1);
    fs.close(early);
    assertEquals("eee" + "b".repeat(4093), get("/k/first"));
    fs.close(fs.create(kim, "/k/c", 0644));
    assertEquals(2009, fs.stat(root, "/k/c", false).uid());
    fs.rename(root, "/k", "/k2");
    fs.mkdir(root, "/k", 0755);
    put("/k/second", "2");
    assertEquals("2", get("/k/second"));
    assertEquals("ENOENT", outcome(() -> fs.stat(root, "/k2/second", false)));
    assertEquals("EEXIST", outcome(() -> fs.open(root, "/k/second", FileSystem.O_CREAT | FileSystem.O_EXCL | FileSystem.O_WRONLY, 0644)));
    FileHandle again = fs.open(root, "/k/second", FileSystem.O_CREAT | FileSystem.O_RDWR, 0644); // exists: opened
    assertEquals("2", new String(fs.read(root, again, 0, 10), StandardCharsets.UTF_8));
    fs.close(again);
    fs.mkdir(root, "/k/sub", 0755);
    put("/k/sub/third", "3");
    assertEquals("3", get("/k/sub/third"));
    List<String> failed = kernel.database().transaction(c -> {
      var rs = c.createStatement().executeQuery(
          "SELECT call || ' ' || object FROM audit WHERE object LIKE 'file:/k%' AND outcome <> 'ok' ORDER BY 1");
      var out = new ArrayList<String>();
      while (rs.next()) {
        out.add(rs.getString(1));
      }
      return out;
    });
    assertEquals(List.of("fs.open file:/k/nope", "fs.open file:/k/second", "fs.stat file:/k2/second"), failed);
    assertTrue(fs.check(root, true).ok(), () -> fs.check(root, true).problems().toString());
  }

  @Test
  void createFileIsOneDurableCall() {
    fs.mkdir(root, "/cf", 0755);
    byte[] big = new byte[600 * 1024 + 7]; // three chunks, the last one partial
    new Random(7).nextBytes(big);
    Stat st = fs.createFile(root, "/cf/big", 0640, big); // the directory is not known yet: walks first
    assertEquals(big.length, st.size());
    assertEquals(0640, st.mode());
    assertEquals(1, st.version());
    assertEquals("ok", outcome(() -> fs.createFile(root, "/cf/empty", 0644, new byte[0]))); // known now
    assertEquals("ok", outcome(() -> fs.createFile(root, "/cf/small", 0644, "small".getBytes(StandardCharsets.UTF_8))));
    assertEquals("EEXIST", outcome(() -> fs.createFile(root, "/cf/small", 0644, new byte[1])));
    assertEquals("ENOENT", outcome(() -> fs.createFile(root, "/cf/missing/x", 0644, new byte[1])));
    assertEquals("small", get("/cf/small"));
    assertEquals("", get("/cf/empty"));
    FileHandle h = fs.open(root, "/cf/big", FileSystem.O_RDONLY, 0);
    assertArrayEquals(big, fs.read(root, h, 0, big.length + 10));
    fs.close(h);
    assertTrue(fs.check(root, true).ok(), () -> fs.check(root, true).problems().toString());
  }

  @Test
  void createsAnsweredAtOnceAreWrittenByTheirFirstWriteBack() {
    TestDatabase.Url db = TestDatabase.fresh();
    try (Node a = TestNode.boot(db); Node b = TestNode.boot(db)) {
      FileSystem here = FileSystem.of(a.kernel());
      FileSystem there = FileSystem.of(b.kernel());
      String secret = a.dataDirectory().adminCredential().orElseThrow();
      Session ra = a.kernel().login("admin", secret);
      Session rb = b.kernel().login("admin", secret);
      int flags = FileSystem.O_CREAT | FileSystem.O_EXCL | FileSystem.O_WRONLY;
      byte[] hello = "hello".getBytes(StandardCharsets.UTF_8);
      here.mkdir(ra, "/new", 0755); // made here: the way to it is known

      FileHandle f = here.openNew(ra, "/new/f", flags, 0600);
      assertEquals("ENOENT", outcome(() -> there.stat(rb, "/new/f", false))); // not written yet
      Instant t = Instant.parse("2020-01-02T03:04:05.123456789Z");
      Stat st = here.writeBack(ra, f, 0, hello, 0, hello.length, List.of(SetAttr.chmod(0644), SetAttr.utimens(t, t)), true);
      here.close(f);
      Stat seen = there.stat(rb, "/new/f", false);
      assertEquals(List.of(f.ino(), 0644, t, 5L, 1L), List.of(st.ino(), st.mode(), st.mtime(), st.size(), st.version()));
      assertEquals(List.of(f.ino(), 0644, t, 5L), List.of(seen.ino(), seen.mode(), seen.mtime(), seen.size()));

      // any call by path on the node writes pending creates first, so it sees them
      FileHandle g = here.openNew(ra, "/new/g", flags, 0644);
      assertEquals(List.of("f", "g"), here.list(ra, "/new").stream().map(DirEntry::name).toList());
      assertEquals(g.ino(), there.stat(rb, "/new/g", false).ino());
      here.writeBack(ra, g, 0, hello, 0, hello.length, List.of(), true);
      here.close(g);
      FileHandle twice = here.openNew(ra, "/new/twice", flags, 0644);
      assertEquals("EEXIST", outcome(() -> here.openNew(ra, "/new/twice", flags, 0644))); // one create per name
      here.close(twice);
      FileHandle empty = here.openNew(ra, "/new/empty", flags, 0644);
      here.close(empty); // never written back: closing writes it
      assertEquals(0, there.stat(rb, "/new/empty", false).size());

      // another node changes a directory above meanwhile: written the general way, still by the one call
      FileHandle moved = here.openNew(ra, "/new/later", flags, 0644);
      there.chmod(rb, "/new", 0775);
      here.writeBack(ra, moved, 0, hello, 0, hello.length, List.of(), true);
      here.close(moved);
      assertEquals(List.of(moved.ino(), 5L), List.of(there.stat(rb, "/new/later", false).ino(),
          there.stat(rb, "/new/later", false).size()));

      // another node takes the name meanwhile: the handle's write-back fails, theirs stays
      FileHandle lost = here.openNew(ra, "/new/h", flags, 0644);
      there.createFile(rb, "/new/h", 0644, "theirs".getBytes(StandardCharsets.UTF_8));
      assertEquals("EIO", outcome(() -> here.writeBack(ra, lost, 0, hello, 0, hello.length, List.of(), true)));
      assertEquals("EIO", outcome(() -> here.stat(ra, lost)));
      here.close(lost);
      FileHandle theirs = there.open(rb, "/new/h", FileSystem.O_RDONLY, 0);
      assertEquals("theirs", new String(there.read(rb, theirs, 0, 100), StandardCharsets.UTF_8));
      there.close(theirs);

      // when the modes alone cannot say the caller may create there, it is an ordinary open
      a.kernel().principals().create(ra, "lee", "user", "pw-lee", 2031, 2031, false);
      Session lee = a.kernel().login("lee", "pw-lee");
      assertEquals("EACCES", outcome(() -> here.openNew(lee, "/new/nope", flags, 0644)));
      here.mkdir(ra, "/pub", 0777);
      here.mkdir(lee, "/pub/lee", 0755);
      FileHandle own = here.openNew(lee, "/pub/lee/f", flags, 0640); // the owner's bits say yes: answered at once
      assertEquals("ENOENT", outcome(() -> there.stat(rb, "/pub/lee/f", false)));
      here.writeBack(lee, own, 0, hello, 0, hello.length, List.of(SetAttr.chmod(0600)), true);
      here.close(own);
      Stat mine = there.stat(rb, "/pub/lee/f", false);
      assertEquals(List.of(own.ino(), 2031, 0600, 5L), List.of(mine.ino(), mine.uid(), mine.mode(), mine.size()));

      List<String> calls = a.kernel().database().transaction(c -> {
        var rs = c.createStatement().executeQuery(
            "SELECT call || ' ' || object || ' ' || CASE WHEN outcome = 'ok' THEN 'ok' ELSE 'failed' END"
                + " FROM audit WHERE object LIKE 'file:/new/%' ORDER BY id");
        var out = new ArrayList<String>();
        while (rs.next()) {
          out.add(rs.getString(1));
        }
        return out;
      });
      assertTrue(calls.containsAll(List.of("fs.create file:/new/f ok", "fs.create file:/new/g ok",
          "fs.create file:/new/empty ok", "fs.create file:/new/later ok", "fs.open file:/new/nope failed")), calls::toString);
      assertTrue(here.check(ra, true).ok(), () -> here.check(ra, true).problems().toString());
    }
  }

  @Test
  void largeFilesStreamAndDeduplicate() throws Exception {
    fs.mkdir(root, "/big", 0755);
    byte[] block = new byte[1 << 20];
    new Random(1).nextBytes(block);
    MessageDigest in = MessageDigest.getInstance("SHA-256");
    try (OutputStream out = fs.openOutput(root, "/big/f", 0644)) {
      for (int i = 0; i < 24; i++) {
        block[0] = (byte) (i % 3); // only 3 distinct megabytes: the chunks deduplicate
        out.write(block);
        in.update(block);
      }
    }
    MessageDigest back = MessageDigest.getInstance("SHA-256");
    try (InputStream s = fs.openInput(root, "/big/f")) {
      byte[] buf = new byte[100_000];
      for (int n; (n = s.read(buf)) > 0; ) {
        back.update(buf, 0, n);
      }
    }
    assertArrayEquals(in.digest(), back.digest());
    assertEquals(24L << 20, fs.stat(root, "/big/f", true).size());
    CheckReport r = fs.check(root, true);
    assertTrue(r.ok(), r.problems()::toString);
    assertTrue(r.blobs() < 24 * 4, "3 distinct MiB make at most 12 distinct 256 KiB chunks (+ others): " + r.blobs());
  }

  /**
   * Creates and whole-file writes check the caller's session in their own statement (the audit row is a
   * CTE of it): a closed session's call changes nothing and is audited as denied.
   */
  @Test
  void aClosedSessionsCreatesAndWritesChangeNothing() {
    Session dora = user("dora", 2301, 2301);
    fs.mkdir(root, "/dora", 0777);
    byte[] b = "x".repeat(100).getBytes();
    fs.createFile(dora, "/dora/a", 0644, b); // the slow way: the directory was not walked yet
    fs.createFile(dora, "/dora/b", 0644, b); // one statement against the walked directory
    FileHandle h = fs.open(dora, "/dora/b", FileSystem.O_WRONLY, 0);
    kernel.closeSession(dora);
    for (Runnable call : new Runnable[] {() -> fs.createFile(dora, "/dora/c", 0644, b),
        () -> fs.writeBack(dora, h, 0, b, 0, 100, List.of(), false), // the whole file: one statement
        () -> fs.writeBack(dora, h, 0, b, 0, 50, List.of(), false)}) {
      var e = assertThrows(SyscallException.class, call::run);
      assertEquals(SyscallException.Code.PERMISSION_DENIED, e.code(), e.getMessage());
    }
    assertTrue(fs.find(root, "/dora/c", false).isEmpty());
    assertEquals(100, fs.stat(root, "/dora/b", false).size());
    long denied = kernel.database().transaction(c -> {
      var rs = c.createStatement().executeQuery(
          "SELECT count(*) FROM audit WHERE principal = 'dora' AND outcome = 'denied' AND call IN ('fs.create', 'fs.write')");
      rs.next();
      return rs.getLong(1);
    });
    assertEquals(3, denied);
  }

  /**
   * Retention: a purge forgets what changed before its horizon (old versions, their chunk rows, removed
   * and renamed names, the blobs no kept row uses) and nothing a current file still needs; a node's
   * retention job does the same by itself. On a node of its own: it forgets every other test's history.
   */
  @Test
  void purgeForgetsOnlyWhatIsOlderThanTheRetention() throws Exception {
    try (Node other = TestNode.boot()) {
      Kernel k = other.kernel();
      Session admin = k.login("admin", other.dataDirectory().adminCredential().orElseThrow());
      FileSystem f = FileSystem.of(k);
      f.mkdir(admin, "/r", 0755);
      byte[] x = "x".repeat(1000).getBytes(StandardCharsets.UTF_8);
      byte[] y = "y".repeat(1000).getBytes(StandardCharsets.UTF_8);
      byte[] z = "z".repeat(1000).getBytes(StandardCharsets.UTF_8);
      f.createFile(admin, "/r/a", 0644, x);
      overwrite(f, admin, "/r/a", y); // a's first version, holding x, is history now
      f.createFile(admin, "/r/b", 0644, x); // and x is b's current content
      f.createFile(admin, "/r/c", 0644, z);
      f.unlink(admin, "/r/c"); // z is in history only
      f.rename(admin, "/r/b", "/r/b2");
      assertEquals(2, count(k, "SELECT count(*) FROM fs_chunks WHERE to_version IS NOT NULL"));
      long blobs = count(k, "SELECT count(*) FROM fs_blobs");

      assertTrue(f.purge(admin, Duration.ofHours(1)).none(), "nothing is an hour old");
      k.principals().create(admin, "eve", "user", "pw-eve", 2401, 2401, false);
      Session notRoot = k.login("eve", "pw-eve");
      var refused = assertThrows(FsException.class, () -> f.purge(notRoot, Duration.ZERO));
      assertEquals(Errno.EPERM, refused.errno());

      Purged p = f.purge(admin, Duration.ZERO);
      assertEquals(2, p.chunks(), p::toString);
      assertEquals(1, p.blobs(), "z's blob only; x is b2's: " + p);
      assertTrue(p.versions() >= 2 && p.names() >= 2 && !p.more(), p::toString);
      assertEquals(blobs - 1, count(k, "SELECT count(*) FROM fs_blobs"));
      for (String history : new String[] {"fs_inode_history", "fs_dentry_history", "fs_chunks WHERE to_version IS NOT NULL"}) {
        assertEquals(0, count(k, "SELECT count(*) FROM " + history), history);
      }
      assertArrayEquals(y, read(f, admin, "/r/a"));
      assertArrayEquals(x, read(f, admin, "/r/b2"));
      assertTrue(f.check(admin, true).ok(), () -> f.check(admin, true).problems().toString());
      assertEquals(3, count(k, "SELECT count(*) FROM audit_log WHERE call = 'fs.purge'"));

      try (Retention job = Retention.start(k, Duration.ofMillis(1500))) {
        overwrite(f, admin, "/r/a", z);
        assertEquals(1, count(k, "SELECT count(*) FROM fs_chunks WHERE to_version IS NOT NULL"), "kept 1.5 s");
        long deadline = System.nanoTime() + 15_000_000_000L;
        while (count(k, "SELECT count(*) FROM fs_chunks WHERE to_version IS NOT NULL") > 0) {
          assertTrue(System.nanoTime() < deadline, "the retention job did not purge within 15 s");
          Thread.sleep(200);
        }
        assertEquals(0, count(k, "SELECT count(*) FROM fs_blobs WHERE NOT EXISTS (SELECT 1 FROM fs_chunks c WHERE c.hash = fs_blobs.hash)"));
        assertArrayEquals(z, read(f, admin, "/r/a"));
      }

      // more than a batch: purgeAll goes on, one system call per batch, and reports each
      k.database().transaction(c -> c.createStatement().executeUpdate("""
          INSERT INTO fs_dentry_history (parent, name, ino, removed_at)
          SELECT 1, convert_to('old' || i, 'UTF8'), i, now() - interval '2 hours' FROM generate_series(1, 25000) i"""));
      var batches = new ArrayList<Purged>();
      Purged all = f.purgeAll(admin, Duration.ofHours(1), batches::add);
      assertEquals(25_000, all.names(), all::toString);
      assertEquals(3, batches.size(), batches::toString);
      assertTrue(batches.get(0).more() && !all.more(), batches::toString);
      assertEquals(0, count(k, "SELECT count(*) FROM fs_dentry_history"));
    }
  }

  private static void overwrite(FileSystem f, Session s, String path, byte[] data) {
    FileHandle h = f.open(s, path, FileSystem.O_WRONLY | FileSystem.O_TRUNC, 0);
    f.write(s, h, 0, data, 0, data.length);
    f.close(h);
  }

  private static byte[] read(FileSystem f, Session s, String path) {
    FileHandle h = f.open(s, path, FileSystem.O_RDONLY, 0);
    try {
      return f.read(s, h, 0, 1 << 20);
    } finally {
      f.close(h);
    }
  }

  private static long count(Kernel k, String sql) {
    return k.database().transaction(c -> {
      try (var rs = c.createStatement().executeQuery(sql)) {
        rs.next();
        return rs.getLong(1);
      }
    });
  }

  /** The database itself keeps the file tables' rules (domains since V16), whatever writes to them. */
  @Test
  void theDatabaseRefusesRowsThatBreakTheRules() {
    String[] broken = {
        "INSERT INTO fs_dentries (parent, name, ino) VALUES (1, 'a/b'::bytea, 1)",
        "INSERT INTO fs_dentries (parent, name, ino) VALUES (1, '\\x2e2e'::bytea, 1)",
        "INSERT INTO fs_dentries (parent, name, ino) VALUES (1, '\\x'::bytea, 1)",
        "INSERT INTO fs_dentries (parent, name, ino) VALUES (1, decode(repeat('61', 256), 'hex'), 1)",
        "INSERT INTO fs_dentries (parent, name, ino) VALUES (1, '\\x6100'::bytea, 1)",
        "UPDATE fs_inodes SET mode = 4096 WHERE ino = 1",
        "UPDATE fs_inodes SET kind = 'x' WHERE ino = 1",
        "UPDATE fs_inodes SET nlink = -1 WHERE ino = 1",
        "UPDATE fs_inodes SET size = -1 WHERE ino = 1",
        "UPDATE fs_inodes SET chunk_size = 0 WHERE ino = 1",
        "INSERT INTO fs_chunks (ino, chunk_no, from_version, hash, length) VALUES (1, -1, 1, '\\x00', 1)",
        "INSERT INTO fs_chunks (ino, chunk_no, from_version, hash, length) VALUES (1, 0, 1, '\\x00', 0)"};
    for (String sql : broken) {
      var e = assertThrows(Exception.class, () -> kernel.database().transaction(c -> c.createStatement().executeUpdate(sql)), sql);
      assertTrue(String.valueOf(e.getMessage()).contains("violates check constraint"), sql + ": " + e);
    }
    long fine = kernel.database().transaction(c -> c.createStatement().executeUpdate(
        "UPDATE fs_inodes SET mode = mode, kind = kind, nlink = nlink, size = size WHERE ino = 1"));
    assertEquals(1, fine, "the rules let the root's own row be written back");
  }

  @Test
  void checkerFindsEveryKindOfDamage() {
    try (Node other = TestNode.boot()) {
      Session admin = other.kernel().login("admin", other.dataDirectory().adminCredential().orElseThrow());
      FileSystem f = FileSystem.of(other.kernel());
      f.mkdir(admin, "/d", 0755);
      for (String p : new String[] {"/d/a", "/d/b", "/d/c"}) {
        FileHandle h = f.create(admin, p, 0644);
        byte[] b = (p + " content").repeat(1000).getBytes();
        f.write(admin, h, 0, b, 0, b.length);
        f.close(h);
      }
      assertTrue(f.check(admin, true).ok());
      long a = f.stat(admin, "/d/a", false).ino();
      long b = f.stat(admin, "/d/b", false).ino();
      long c = f.stat(admin, "/d/c", false).ino();
      other.kernel().database().transaction(conn -> {
        var st = conn.createStatement();
        st.executeUpdate("UPDATE fs_inodes SET nlink = 5 WHERE ino = " + a);                 // wrong link count
        st.executeUpdate("UPDATE fs_inodes SET size = 10 WHERE ino = " + b);                 // chunk past the size
        st.executeUpdate("DELETE FROM fs_dentries WHERE ino = " + c);                        // unreachable inode
        st.executeUpdate("INSERT INTO fs_chunks (ino, chunk_no, from_version, hash, length) "
            + "VALUES (999999, 0, 1, '\\x00', 1)");                                        // orphan chunk, missing blob
        st.executeUpdate("UPDATE fs_blobs SET data = 'x'::bytea WHERE hash = (SELECT hash FROM fs_chunks WHERE ino = "
            + a + " LIMIT 1)");                                                              // corrupted content
        st.executeUpdate("INSERT INTO fs_dentries (parent, name, ino) VALUES (999998, 'x', 999996), (1, 'y', 999997)");
        return null;
      });
      List<String> problems = f.check(admin, true).problems();
      String all = String.join("\n", problems);
      assertTrue(all.contains("inode " + a + ": nlink 5 but 1 entries"), all);
      assertTrue(all.contains("inode " + b + " chunk 0: extends past the file's size"), all);
      assertTrue(all.contains("inode " + c + " (f, nlink 1): unreachable"), all);
      assertTrue(all.contains("inode 999999 chunk 0: current chunk of a missing or non-file inode"), all);
      assertTrue(all.contains("inode 999999 chunk 0 (from version 1): its blob is missing"), all);
      assertTrue(all.contains("does not match its SHA-256"), all);
      assertTrue(all.contains("differs from its blob's"), all);
      assertTrue(all.contains("entry x in inode 999998: the directory does not exist"), all);
      assertTrue(all.contains("entry y in inode 1: inode 999997 does not exist"), all);
    }
  }

  @Test
  void analyticsViewsAnswerThroughDbosSql() throws Exception {
    Session carol = user("carol", 2101, 2101);
    fs.mkdir(root, "/sql", 0777);
    put("/sql/earlier", "changed before T");
    Thread.sleep(20);
    Instant t = Instant.now();
    Thread.sleep(20);
    for (String f : new String[] {"/sql/a", "/sql/copy-of-a", "/sql/b"}) {
      FileHandle h = fs.create(carol, f, 0644);
      byte[] b = (f.equals("/sql/b") ? "other content" : "same content, written twice").repeat(20_000).getBytes();
      fs.write(carol, h, 0, b, 0, b.length);
      fs.close(h);
    }
    var sql = new org.dbos.kernel.sql.SqlConsole(kernel);
    var largest = sql.run(root, "SELECT path, size, owner FROM fs_largest_files WHERE path LIKE '/sql/%' LIMIT 1", false, 10);
    assertEquals(List.of(List.of("/sql/a", "540000", "carol")), largest.rows());
    var usage = sql.run(root, "SELECT files, bytes FROM fs_usage_by_owner WHERE owner = 'carol'", false, 10);
    assertEquals(List.of(List.of("3", String.valueOf(2 * 540000 + 260000))), usage.rows());
    // other tests share the database: only duplicates among this test's files count
    var dups = sql.run(root, "SELECT copies, wasted_bytes, array_to_string(paths, ' ') FROM fs_duplicates "
        + "WHERE array_to_string(paths, ' ') LIKE '%/sql/%'", false, 10);
    assertEquals(List.of(List.of("2", "540000", "/sql/a /sql/copy-of-a")), dups.rows());
    var changed = sql.run(root, "SELECT path FROM fs_changed_since('" + t + "') WHERE path LIKE '/sql/%' ORDER BY path",
        false, 10);
    assertEquals(List.of(List.of("/sql/a"), List.of("/sql/b"), List.of("/sql/copy-of-a")), changed.rows());
    var earlier = sql.run(root, "SELECT path FROM fs_changed_since('" + t.minusSeconds(3600) + "') WHERE path LIKE '/sql/%' "
        + "ORDER BY path", false, 10);
    assertEquals(4, earlier.rows().size(), earlier.rows()::toString);
    var mode = sql.run(root, "SELECT mode FROM fs_files WHERE path = '/sql'", false, 10);
    assertEquals(List.of(List.of("0777")), mode.rows());
  }

  @Test
  void concurrentRenameStormStaysConsistent() throws Exception {
    fs.mkdir(root, "/storm", 0755);
    for (int i = 0; i < 4; i++) {
      fs.mkdir(root, "/storm/d" + i, 0755);
      put("/storm/d" + i + "/f", "file " + i);
    }
    ExecutorService pool = Executors.newFixedThreadPool(4);
    List<Future<?>> done = new ArrayList<>();
    for (int t = 0; t < 4; t++) {
      int seed = t;
      done.add(pool.submit(() -> {
        Random r = new Random(seed);
        for (int i = 0; i < 60; i++) {
          int a = r.nextInt(4);
          int b = r.nextInt(4);
          // moves directories into each other and back, files between directories: only errnos may fail
          String from = findDir(a);
          String to = findDir(b);
          String name = to + "/n" + seed + "_" + i;
          if (from != null && to != null) {
            outcome(() -> fs.rename(root, from, name));
          }
        }
      }));
    }
    for (Future<?> f : done) {
      f.get();
    }
    pool.shutdown();
    CheckReport r = fs.check(root, false);
    assertTrue(r.ok(), r.problems()::toString);
  }

  /** Some directory of the storm (wherever it has moved), or null. */
  static String findDir(int i) {
    List<String> all = new ArrayList<>();
    walkDirs("/storm", all);
    return all.isEmpty() ? null : all.get(i % all.size());
  }

  static void walkDirs(String dir, List<String> out) {
    try {
      for (DirEntry e : fs.list(root, dir)) {
        if (e.stat().isDirectory()) {
          out.add(dir + "/" + e.name());
          walkDirs(dir + "/" + e.name(), out);
        }
      }
    } catch (FsException e) {
      // moved away while we looked
    }
  }
}
