package org.dbos.server.fuse;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import org.cryptomator.jfuse.api.DirFiller;
import org.cryptomator.jfuse.api.Errno;
import org.cryptomator.jfuse.api.FileInfo;
import org.cryptomator.jfuse.api.FuseConfig;
import org.cryptomator.jfuse.api.FuseConnInfo;
import org.cryptomator.jfuse.api.FuseOperations;
import org.cryptomator.jfuse.api.Stat;
import org.cryptomator.jfuse.api.Statvfs;
import org.cryptomator.jfuse.api.TimeSpec;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.files.DirEntry;
import org.dbos.kernel.files.FileHandle;
import org.dbos.kernel.files.FileSystem;
import org.dbos.kernel.files.FsException;
import org.dbos.kernel.files.Names;
import org.dbos.kernel.files.SetAttr;
import org.dbos.kernel.files.Stat.Kind;
import org.dbos.kernel.security.Principal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * FUSE operations over {@link FileSystem}. Each request runs as the principal whose uid is the calling
 * process's (uid 0 is admin, like root); an unknown uid gets EACCES. Writes are buffered per open
 * file and flushed as one system call per {@link #FLUSH_BYTES} (or at a non-contiguous write, read,
 * truncate, fsync, flush on close(2), and release); attribute changes through an open file that the
 * kernel can answer at once (see {@link FileSystem#preview}) ride along with them. close(2) and
 * fsync return when what was written through the handle is durable; other flushes only commit.
 */
final class DbfsFuse implements FuseOperations {
  private static final Logger log = LoggerFactory.getLogger(DbfsFuse.class);
  static final int FLUSH_BYTES = 4 << 20;
  /** A sequential reader gets this much per database call; FUSE asks for at most 128 KiB at a time. */
  static final int READ_AHEAD = 8 << 20;

  private final Kernel kernel;
  private final FileSystem fs;
  private final Errno errno;
  private final FuseContext context;
  private final ConcurrentHashMap<Integer, Session> sessions = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<Long, OpenFile> open = new ConcurrentHashMap<>();
  private volatile Method statSegment;
  private final ExecutorService prefetcher = Executors.newVirtualThreadPerTaskExecutor();
  /** Attributes by (uid, path), for {@link #ATTR_NANOS}; dropped by every change made through this mount. */
  private final ConcurrentHashMap<String, Cached> attrs = new ConcurrentHashMap<>();
  /** The cache keys naming each inode: a change through one name drops all of them (hard links). */
  private final ConcurrentHashMap<Long, Set<String>> keysOf = new ConcurrentHashMap<>();
  static final long ATTR_NANOS = 1_000_000_000L;
  /** When the expired answers last went ({@link #sweep}). */
  private final AtomicLong lastSweep = new AtomicLong(System.nanoTime());

  /**
   * Directories this mount created (or, see {@link #fresh}, listed) in the last {@link #ATTR_NANOS}, with
   * every name it put in them since:
   * another name there is absent (tar and cp look up each name before creating it), as far as the
   * kernel's own negative entries (also cached for that long) would know.
   */
  private final ConcurrentHashMap<String, FreshDir> fresh = new ConcurrentHashMap<>();

  /**
   * Close-to-open caching: the version of each inode whose pages the kernel may hold (read after an
   * open that saw this version, or written through this mount). An open that finds the same version
   * lets the kernel keep them (keep_cache), so rereading costs no database call; any other change,
   * from this node or another, shows at the next open.
   */
  private final ConcurrentHashMap<Long, Long> cachedVersion = new ConcurrentHashMap<>();
  static final int CACHED_MAX = 100_000;

  /** libfuse's names for unlinked open files (see {@link #rename}), and their inodes. */
  private final ConcurrentHashMap<String, Long> hidden = new ConcurrentHashMap<>();
  private static final java.util.regex.Pattern HIDDEN = java.util.regex.Pattern.compile("\\.fuse_hidden[0-9a-f]{16}");

  private record Cached(org.dbos.kernel.files.Stat stat, long until) {}

  /**
   * {@code made}: this mount made the directory (and has filled it since), so a new name there is its
   * own; {@code listed}: how many names it held when last listed (0 when made).
   */
  private record FreshDir(Set<String> names, long until, boolean listing, boolean made, int listed) {}

  /** A directory of at most this many names is listed again whenever it expires (see {@link #fresh}). */
  static final int RELIST_MAX = 4096;
  /**
   * A bigger one only while it fills: if at least one name in RELIST_RATIO is new since it was last
   * listed. Without the listing, each new name costs a lookup and a create the slow way (~1 ms more,
   * and its 1-writer creates ran at half the rate past 4,096 names); the listing costs ~3 µs a name
   * (40–75 ms for 20,000). So tar filling a directory of 20,000 names keeps it listed; one new name a
   * second in a directory of 100,000 does not.
   */
  static final int RELIST_RATIO = 256;

  /** Bytes [start, start + data.length) of a file as last read; {@code eof}: nothing follows. */
  private record Window(long start, byte[] data, boolean eof) {
    boolean covers(long offset, int n) {
      return offset >= start && (offset + n <= start + data.length || eof);
    }
  }

  /** An open file and its pending writes: bytes [start, start + len) not yet written. */
  private static final class OpenFile {
    final FileHandle handle;
    final Session session;
    byte[] buf;
    int len;
    long start;
    /** Read-ahead, dropped (from any thread) when this mount changes the inode. */
    volatile Window ra;
    /** The window after {@link #ra}, being fetched while the reader consumes ra. */
    volatile CompletableFuture<Window> next;
    long lastReadEnd = -1;
    /** fchmod/fchown/futimens after the buffered bytes, applied with them; what they make of the inode. */
    final List<SetAttr> attrs = new ArrayList<>();
    volatile org.dbos.kernel.files.Stat pending;
    /** start + len while bytes are buffered, else -1: read by getattr without waiting for a reader's fetch. */
    volatile long pendingEnd = -1;
    /** Bytes or attributes were committed through this handle without waiting for the WAL flush. */
    boolean unsynced;
    /** Created by {@link FileSystem#openNew}: the first flush writes the file itself. */
    boolean created;

    boolean dirty() {
      return len > 0 || !attrs.isEmpty() || created;
    }

    OpenFile(FileHandle handle, Session session) {
      this.handle = handle;
      this.session = session;
    }
  }

  DbfsFuse(Kernel kernel, FileSystem fs, Errno errno, FuseContext context) {
    this.kernel = kernel;
    this.fs = fs;
    this.errno = errno;
    this.context = context;
  }

  @Override
  public Errno errno() {
    return errno;
  }

  @Override
  public Set<Operation> supportedOperations() {
    return EnumSet.of(Operation.INIT, Operation.DESTROY, Operation.GET_ATTR, Operation.READLINK,
        Operation.MKDIR, Operation.UNLINK, Operation.RMDIR, Operation.SYMLINK, Operation.RENAME,
        Operation.CHMOD, Operation.CHOWN, Operation.TRUNCATE, Operation.OPEN, Operation.READ, Operation.WRITE,
        Operation.STATFS, Operation.FLUSH, Operation.RELEASE, Operation.FSYNC, Operation.OPEN_DIR,
        Operation.READ_DIR, Operation.RELEASE_DIR, Operation.FSYNCDIR, Operation.ACCESS, Operation.CREATE,
        Operation.UTIMENS);
  }

  /** Runs one request and maps its failure to -errno; never lets an exception reach native code. */
  private interface Op {
    int run(Session s) throws Exception;
  }

  private int run(String what, String path, Op op) {
    try {
      return op.run(session());
    } catch (FsException e) {
      return -e.errno().number();
    } catch (SyscallException e) {
      if (e.code() == SyscallException.Code.UNAVAILABLE || e.code() == SyscallException.Code.INTERNAL) {
        log.warn("{} {}: {}", what, path, e.getMessage());
      }
      return -FsException.errnoOf(e).number();
    } catch (Exception | Error e) {
      log.error("{} {} failed", what, path, e);
      return -errno.eio();
    }
  }

  private Session session() {
    int uid = context.uid();
    Session s = sessions.get(uid);
    if (s != null) {
      return s;
    }
    return sessions.computeIfAbsent(uid, u -> {
      Principal p = kernel.principals().byUid(kernel.system(), u).orElseThrow(() -> {
        log.warn("uid {} is not a DBOS principal: its requests are refused (EACCES)", u);
        return new FsException(org.dbos.kernel.files.Errno.EACCES, "uid " + u + " is not a DBOS principal");
      });
      return kernel.openSession(p.name(), Duration.ofDays(3650));
    });
  }

  // ---- attribute cache: the kernel's is off (attr_timeout 0) because it cannot drop every name of
  // an inode; this one can. Another node's changes show within ATTR_NANOS, like names do. ----

  private org.dbos.kernel.files.Stat lstat(Session s, String path) {
    String key = s.uid() + "\0" + path;
    Cached c = attrs.get(key);
    if (c != null && c.until() - System.nanoTime() > 0) {
      return c.stat();
    }
    FreshDir d = fresh(s, parent(path));
    if (d != null && !d.names().contains(name(path))) {
      throw new FsException(org.dbos.kernel.files.Errno.ENOENT, path);
    }
    var st = fs.find(s, path, false)
        .orElseThrow(() -> new FsException(org.dbos.kernel.files.Errno.ENOENT, path)); // not a failed call: cheap
    remember(s, path, st);
    return st;
  }

  /**
   * The names of {@code dir} if the mount created it or listed it less than {@link #ATTR_NANOS} ago. One
   * that expired within the last ATTR_NANOS (a directory tar is filling) is listed again if it is
   * small or still filling (see {@link #RELIST_RATIO}): one call instead of a lookup per new name.
   */
  private FreshDir fresh(Session s, String dir) {
    String key = s.uid() + "\0" + dir;
    FreshDir d = fresh.get(key);
    if (d == null || d.listing()) {
      return null;
    }
    if (d.until() - System.nanoTime() > 0) {
      return d;
    }
    int size = d.names().size();
    if (System.nanoTime() - d.until() > ATTR_NANOS
        || size > RELIST_MAX && (long) (size - d.listed()) * RELIST_RATIO < size) {
      fresh.remove(key, d);
      return null;
    }
    // While listing, lookups ask the database; names the mount adds meanwhile go in too.
    Set<String> names = ConcurrentHashMap.newKeySet();
    FreshDir listing = new FreshDir(names, 0, true, d.made(), 0);
    if (!fresh.replace(key, d, listing)) {
      return null;
    }
    try {
      for (DirEntry e : fs.list(s, dir)) {
        names.add(e.name());
      }
    } catch (RuntimeException e) {
      fresh.remove(key, listing);
      return null;
    }
    FreshDir listed = new FreshDir(names, System.nanoTime() + ATTR_NANOS, false, d.made(), names.size());
    return fresh.replace(key, listing, listed) ? listed : null;
  }

  /** Caches what a call just returned: libfuse asks for the attributes after every change. */
  private void remember(Session s, String path, org.dbos.kernel.files.Stat st) {
    String key = s.uid() + "\0" + path;
    attrs.put(key, new Cached(st, System.nanoTime() + ATTR_NANOS));
    keysOf.compute(st.ino(), (ino, keys) -> {
      keys = keys == null ? ConcurrentHashMap.newKeySet() : keys;
      keys.add(key);
      return keys;
    });
    long now = System.nanoTime();
    long last = lastSweep.get();
    if (now - last > ATTR_NANOS && lastSweep.compareAndSet(last, now)) {
      sweep(now);
    }
  }

  /**
   * Drops the answers that expired (at most once per ATTR_NANOS), so that the caches hold the last
   * seconds' names rather than every name the mount ever saw (a find over 16,000 names left 16,000
   * entries, and each change of a directory's permissions scanned them all). A directory stays in
   * {@link #fresh} one more ATTR_NANOS after it expires, as {@link #fresh} may list it again.
   */
  private void sweep(long now) {
    attrs.values().removeIf(c -> c.until() - now <= 0);
    for (Long ino : keysOf.keySet()) {
      keysOf.computeIfPresent(ino, (k, keys) -> {
        keys.removeIf(key -> !attrs.containsKey(key));
        return keys.isEmpty() ? null : keys;
      });
    }
    fresh.values().removeIf(d -> !d.listing() && now - d.until() > ATTR_NANOS);
  }

  private OpenFile openFile(long ino) {
    return open.values().stream().filter(f -> f.handle.ino() == ino).findFirst()
        .orElseThrow(() -> new FsException(org.dbos.kernel.files.Errno.ENOENT, "inode " + ino + " is closed"));
  }

  /** How many (caller, path) answers the attribute cache holds. */
  int cachedNames() {
    return attrs.size();
  }

  /** Drops every cached name of {@code ino}. */
  private void forget(long ino) {
    Set<String> keys = keysOf.remove(ino);
    if (keys != null) {
      keys.forEach(attrs::remove);
    }
  }

  /** Drops {@code path} (for every caller) and every other name of its inode, and its parent directory. */
  private void forgetPath(String path) {
    for (String p : new String[] {path, parent(path)}) {
      for (int uid : sessions.keySet()) {
        Cached c = attrs.remove(uid + "\0" + p);
        if (c != null) {
          forget(c.stat().ino());
        }
      }
    }
  }

  /** After changes that move or re-permission whole subtrees. */
  private void forgetAll() {
    attrs.clear();
    keysOf.clear();
    fresh.clear();
  }

  /** A name now (maybe) present in its directory. */
  private void added(String path) {
    String p = parent(path);
    for (int uid : sessions.keySet()) {
      FreshDir d = fresh.get(uid + "\0" + p);
      if (d != null) {
        d.names().add(name(path));
      }
    }
  }

  private static String parent(String path) {
    int i = path.lastIndexOf('/');
    return i <= 0 ? "/" : path.substring(0, i);
  }

  private static String name(String path) {
    return path.substring(path.lastIndexOf('/') + 1);
  }

  // ---- attributes ----

  @Override
  public void init(FuseConnInfo conn, FuseConfig config) {
    // Not AUTO_INVAL_DATA: with it the kernel asks for the attributes before every read(2); cached
    // pages are checked at open instead (keepCache).
    conn.setWant(conn.want() & ~FuseConnInfo.FUSE_CAP_AUTO_INVAL_DATA | (conn.capable() & FuseConnInfo.FUSE_CAP_BIG_WRITES));
    // libfuse 3 takes these only from init, and jfuse has no setters: write struct fuse_config.
    // use_ino: st_ino is the DBFS inode number (hard links, du, tar). Not hard_remove: with it libfuse
    // passes a NULL path for an unlinked open file and jfuse 0.7.3 crashes reading it, so unlinking an
    // open file goes through libfuse's rename to .fuse_hidden* (removed at release).
    MemorySegment seg = segment(config);
    if (seg != null) {
      org.cryptomator.jfuse.linux.amd64.extr.fuse3.fuse_config.use_ino(seg, 1);
      // Hard links are separate nodes to libfuse's high-level API, so a cached st_nlink of one name
      // would go stale when another name is linked or unlinked: attributes are not cached.
      org.cryptomator.jfuse.linux.amd64.extr.fuse3.fuse_config.attr_timeout(seg, 0.0);
      // Names and absent names are cached for a second (creates and removals through this mount
      // update the cache at once; another node's show within the timeout).
      org.cryptomator.jfuse.linux.amd64.extr.fuse3.fuse_config.entry_timeout(seg, 1.0);
      org.cryptomator.jfuse.linux.amd64.extr.fuse3.fuse_config.negative_timeout(seg, 1.0);
    } else {
      log.warn("cannot set use_ino: inode numbers through the mount are not DBFS's");
    }
  }

  @Override
  public void destroy() {
    for (OpenFile f : open.values()) {
      flushQuietly(f);
      fs.close(f.handle);
    }
    open.clear();
  }

  @Override
  public int getattr(String given, Stat stat, FileInfo fi) {
    String path = RawPaths.path(given, 0);
    return run("getattr", path, s -> {
      var st = attributes(s, path);
      long size = st.size();
      for (OpenFile f : open.values()) {
        if (f.handle.ino() == st.ino()) {
          var pending = f.pending;
          if (pending != null) {
            st = pending;
            size = Math.max(size, st.size());
          }
          size = Math.max(size, f.pendingEnd);
        }
      }
      fill(stat, st, size);
      return 0;
    });
  }

  /** lstat, or fstat of an unlinked open file (which libfuse names by its hidden name). */
  private org.dbos.kernel.files.Stat attributes(Session s, String path) {
    Long gone = hidden.get(path);
    return gone == null ? lstat(s, path) : fs.stat(s, openFile(gone).handle);
  }

  private void fill(Stat stat, org.dbos.kernel.files.Stat st, long size) {
    stat.setMode(st.posixMode());
    stat.setUid(st.uid());
    stat.setGid(st.gid());
    stat.setNLink((short) Math.min(st.nlink(), Short.MAX_VALUE));
    stat.setSize(size);
    stat.aTime().set(st.atime());
    stat.mTime().set(st.mtime());
    stat.cTime().set(st.ctime());
    // jfuse has no setters for st_ino, st_blksize and st_blocks (du, tar and find need them):
    // struct stat on x86-64 Linux has them at offsets 8, 56 and 64.
    MemorySegment seg = segment(stat);
    if (seg != null) {
      seg.set(ValueLayout.JAVA_LONG, 8, st.ino());
      seg.set(ValueLayout.JAVA_LONG, 56, 4096);
      seg.set(ValueLayout.JAVA_LONG, 64, (size + 511) / 512);
    }
  }

  /** The native struct behind one of jfuse's record wrappers (StatImpl, StatvfsImpl, FuseConfigImpl, FileInfoImpl). */
  private MemorySegment segment(Object wrapper) {
    try {
      Method m = wrapper instanceof Stat ? statSegment : null;
      if (m == null) {
        m = wrapper.getClass().getDeclaredMethod("segment");
        m.setAccessible(true);
        if (wrapper instanceof Stat) {
          statSegment = m;
        }
      }
      return (MemorySegment) m.invoke(wrapper);
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null;
    }
  }

  /**
   * After an attribute change. A directory's new mode or owner changes what callers other than root
   * (whom permissions do not stop) may see below it: their cached answers go.
   */
  private void forgetDir(Session s, org.dbos.kernel.files.Stat changed, String path, boolean permissions) {
    if (changed.isDirectory() && permissions) {
      attrs.keySet().removeIf(k -> !k.startsWith("0\0"));
      fresh.keySet().removeIf(k -> !k.startsWith("0\0"));
    }
    forget(changed.ino());
    forgetPath(path);
    remember(s, path, changed);
  }

  /**
   * Sets fuse_file_info.keep_cache (bit 2 of the bit field after {@code int flags}, in every libfuse
   * 3): jfuse has no setter.
   */
  private void keepCache(FileInfo fi) {
    MemorySegment seg = segment(fi);
    if (seg != null) {
      seg.set(ValueLayout.JAVA_INT, 4, seg.get(ValueLayout.JAVA_INT, 4) | 4);
    }
  }

  private void ino(Stat stat, long ino) {
    MemorySegment seg = segment(stat);
    if (seg != null) {
      seg.set(ValueLayout.JAVA_LONG, 8, ino);
    }
  }

  @Override
  public int readlink(String given, ByteBuffer buf, long len) {
    String path = RawPaths.path(given, 0);
    return run("readlink", path, s -> {
      byte[] t = Names.bytes(fs.readlink(s, path));
      int n = (int) Math.min(t.length, len - 1);
      buf.put(t, 0, n);
      buf.put((byte) 0);
      return 0;
    });
  }

  @Override
  public int statfs(String path, Statvfs st) {
    return run("statfs", path, s -> {
      var f = fs.statfs(s);
      st.setBsize(f.blockSize());
      st.setFrsize(f.blockSize());
      st.setBlocks(f.blocks());
      st.setBfree(f.freeBlocks());
      st.setBavail(f.freeBlocks());
      st.setNameMax(f.nameMax());
      // jfuse has no setters for the inode counts (df -i, stat -f would show 0 of 0): struct statvfs
      MemorySegment seg = segment(st);
      if (seg != null) {
        org.cryptomator.jfuse.linux.amd64.extr.fuse3.statvfs.f_files(seg, f.files() + f.freeFiles());
        org.cryptomator.jfuse.linux.amd64.extr.fuse3.statvfs.f_ffree(seg, f.freeFiles());
        org.cryptomator.jfuse.linux.amd64.extr.fuse3.statvfs.f_favail(seg, f.freeFiles());
      }
      return 0;
    });
  }

  @Override
  public int access(String given, int mask) {
    String path = RawPaths.path(given, 0);
    return run("access", path, s -> {
      fs.access(s, path, mask);
      return 0;
    });
  }

  @Override
  public int chmod(String given, int mode, FileInfo fi) {
    String path = RawPaths.path(given, 0);
    return run("chmod", path, s -> {
      var now = attributes(s, path);
      int removed = now.mode() & ~(mode & 07777);
      if (s.uid() != 0 && now.uid() != s.uid() && (mode & 07777 & ~now.mode()) == 0 && removed != 0
          && (removed & ~06000) == 0) {
        // not the owner, only set-user-ID or set-group-ID going: the kernel clearing them before a write
        flushInode(now.ino());
        forgetDir(s, fs.dropSetId(s, path), path, true);
        return 0;
      }
      SetAttr a = SetAttr.chmod(mode);
      if (!deferred(s, path, fi, a)) {
        forgetDir(s, unlinked(s, path, a).orElseGet(() -> fs.chmod(s, path, mode & 07777)), path, true);
      }
      return 0;
    });
  }

  @Override
  public int chown(String given, int uid, int gid, FileInfo fi) {
    String path = RawPaths.path(given, 0);
    return run("chown", path, s -> {
      SetAttr a = SetAttr.chown(uid, gid);
      if (!deferred(s, path, fi, a)) {
        forgetDir(s, unlinked(s, path, a).orElseGet(() -> fs.chown(s, path, uid, gid, false)), path, true);
      }
      return 0;
    });
  }

  @Override
  public int utimens(String given, TimeSpec atime, TimeSpec mtime, FileInfo fi) {
    String path = RawPaths.path(given, 0);
    return run("utimens", path, s -> {
      SetAttr a = SetAttr.utimens(time(atime), time(mtime));
      if (!deferred(s, path, fi, a)) {
        forgetDir(s, unlinked(s, path, a).orElseGet(() -> fs.utimens(s, path, time(atime), time(mtime), false)), path,
            false);
      }
      return 0;
    });
  }

  /**
   * An attribute change of a file the caller has open with buffered writes (tar's futimens, fchown and
   * fchmod before close; the kernel passes them by path) is answered at once when the kernel says it
   * is certain to be allowed, and applied with the buffered bytes: one system call instead of one each.
   * Otherwise every buffered change to the inode is written first, so the change lands after them (a
   * later write must not undo a futimens).
   */
  private boolean deferred(Session s, String path, FileInfo fi, SetAttr a) {
    OpenFile given = fi == null ? null : open.get(fi.getFh());
    long ino = given != null ? given.handle.ino() : attributes(s, path).ino();
    for (OpenFile f : open.values()) {
      if (f.handle.ino() == ino && f.session == s) {
        synchronized (f) {
          if (f.dirty()) {
            var base = f.pending != null ? f.pending : attributes(s, path);
            var next = FileSystem.preview(s, base, a, Instant.now());
            if (next.isPresent()) {
              f.attrs.add(a);
              f.pending = next.get();
              return true;
            }
          }
        }
      }
    }
    flushInode(ino);
    return false;
  }

  /** fchmod, fchown or futimens of an unlinked open file: no path names it, its handle does. */
  private Optional<org.dbos.kernel.files.Stat> unlinked(Session s, String path, SetAttr a) {
    Long gone = hidden.get(path);
    return gone == null ? Optional.empty() : Optional.of(fs.setattr(s, openFile(gone).handle, a));
  }

  private static Instant time(TimeSpec t) {
    if (t.isUtimeOmit()) {
      return null;
    }
    return t.isUtimeNow() ? FileSystem.NOW : t.get();
  }

  // ---- names ----

  @Override
  public int mkdir(String given, int mode) {
    String path = RawPaths.path(given, 0);
    return run("mkdir", path, s -> {
      var st = fs.mkdir(s, path, mode & 07777);
      forgetPath(path);
      added(path);
      remember(s, path, st);
      fresh.put(s.uid() + "\0" + path, new FreshDir(ConcurrentHashMap.newKeySet(), System.nanoTime() + ATTR_NANOS, false, true, 0));
      return 0;
    });
  }

  /** Bound by {@link Mount} itself: jfuse 0.7.3 has no mknod operation. */
  public int mknod(String path, int mode, long rdev) {
    return run("mknod", path, s -> {
      Kind kind = Kind.ofType(mode);
      if (kind == Kind.FILE) {
        fs.close(fs.open(s, path, FileSystem.O_CREAT | FileSystem.O_EXCL | FileSystem.O_WRONLY, mode & 07777));
      } else if (kind == Kind.FIFO || kind == Kind.SOCKET) {
        fs.mknod(s, path, kind, mode & 07777); // the kernel moves their data itself
      } else {
        return -errno.enotsup(); // device nodes: DBFS keeps no device numbers
      }
      forgetPath(path);
      added(path);
      return 0;
    });
  }

  @Override
  public int unlink(String given) {
    String path = RawPaths.path(given, 0);
    return run("unlink", path, s -> {
      if (hidden.remove(path) != null) {
        return 0; // libfuse's removal of a "hidden" name at the last close: the inode went with it
      }
      long ino = lstat(s, path).ino(); // its other names' link counts change
      fs.unlink(s, path);
      forget(ino);
      forgetPath(path);
      return 0;
    });
  }

  @Override
  public int rmdir(String given) {
    String path = RawPaths.path(given, 0);
    return run("rmdir", path, s -> {
      fs.rmdir(s, path);
      forgetPath(path);
      fresh.remove(s.uid() + "\0" + path);
      return 0;
    });
  }

  @Override
  public int symlink(String given, String given2) {
    String target = RawPaths.path(given, 0);
    String linkname = RawPaths.path(given2, 1);
    return run("symlink", linkname, s -> {
      fs.symlink(s, target, linkname);
      forgetPath(linkname);
      added(linkname);
      return 0;
    });
  }

  @Override
  public int rename(String given, String given2, int flags) {
    String oldpath = RawPaths.path(given, 0);
    String newpath = RawPaths.path(given2, 1);
    return run("rename", oldpath, s -> {
      if (HIDDEN.matcher(name(newpath)).matches()) {
        long ino = lstat(s, oldpath).ino();
        if (open.values().stream().anyMatch(f -> f.handle.ino() == ino)) {
          // libfuse "hides" an open file it is asked to unlink (or to replace) by renaming it; DBFS
          // keeps an unlinked inode alive while it is open, so it is unlinked for real, as on ext4
          fs.unlink(s, oldpath);
          forget(ino);
          forgetPath(oldpath);
          hidden.put(newpath, ino);
          return 0;
        }
      }
      fs.rename(s, oldpath, newpath, flags);
      forgetAll();
      return 0;
    });
  }

  /** Bound by {@link Mount} itself: jfuse 0.7.3 has no link operation. */
  public int link(String oldpath, String newpath) {
    return run("link", newpath, s -> {
      forget(fs.link(s, oldpath, newpath).ino());
      forgetPath(newpath);
      added(newpath);
      return 0;
    });
  }

  // ---- directories ----

  @Override
  public int opendir(String given, FileInfo fi) {
    String path = RawPaths.path(given, 0);
    return run("opendir", path, s -> {
      var st = fs.stat(s, path, true);
      if (!st.isDirectory()) {
        return -errno.enotdir();
      }
      return 0;
    });
  }

  @Override
  public int readdir(String given, DirFiller filler, long offset, FileInfo fi, int flags) {
    String path = RawPaths.path(given, 0);
    return run("readdir", path, s -> {
      var entries = fs.list(s, path);
      fresh.remove(s.uid() + "\0" + path); // the listing may show another node's names: look them up
      // With use_ino libfuse passes st_ino through, and glibc's readdir skips entries whose d_ino is 0.
      filler.fill(".", st -> ino(st, 1), 0, 0);
      filler.fill("..", st -> ino(st, 1), 0, 0);
      for (DirEntry e : entries) {
        int full = Names.isUtf8(e.rawName()) ? -1 : RawPaths.fill(filler, e.rawName(), e.stat().ino(), e.stat().posixMode());
        if (full == -1) {
          full = filler.fill(e.name(), st -> {
            ino(st, e.stat().ino());
            st.setMode(e.stat().posixMode());
          }, 0, 0);
        }
        if (full != 0) {
          return -errno.enomem();
        }
      }
      return 0;
    });
  }

  @Override
  public int releasedir(String path, FileInfo fi) {
    return 0;
  }

  @Override
  public int fsyncdir(String path, int datasync, FileInfo fi) {
    return run("fsyncdir", path, s -> {
      fs.sync(s); // name changes commit without waiting for the WAL: this waits for them
      return 0;
    });
  }

  // ---- files ----

  @Override
  public int create(String given, int mode, FileInfo fi) {
    String path = RawPaths.path(given, 0);
    return run("create", path, s -> {
      // a new name in a directory this mount made and is filling (tar, cp -r, git): written with the
      // file's first flush, one system call instead of two
      FreshDir d = fresh(s, parent(path));
      boolean mine = d != null && d.made() && !d.names().contains(name(path));
      FileHandle h = mine ? fs.openNew(s, path, fi.getFlags() | FileSystem.O_CREAT, mode & 07777)
          : fs.open(s, path, fi.getFlags() | FileSystem.O_CREAT, mode & 07777);
      forgetPath(path);
      added(path);
      if (h.opened().version() == 1) { // new, or never changed: what open saw is current
        remember(s, path, h.opened());
        cached(h.ino(), 1);
      }
      var f = new OpenFile(h, s);
      f.created = mine;
      open.put(h.id(), f);
      fi.setFh(h.id());
      return 0;
    });
  }

  @Override
  public int open(String given, FileInfo fi) {
    String path = RawPaths.path(given, 0);
    return run("open", path, s -> {
      FileHandle h = fs.open(s, path, fi.getFlags() & ~(FileSystem.O_CREAT | FileSystem.O_EXCL), 0);
      if ((fi.getFlags() & FileSystem.O_TRUNC) != 0) {
        forget(h.ino());
      }
      Long cached = cachedVersion.get(h.ino());
      if ((fi.getFlags() & FileSystem.O_TRUNC) == 0 && cached != null && cached == h.opened().version()) {
        keepCache(fi);
      } else {
        cached(h.ino(), h.opened().version());
      }
      open.put(h.id(), new OpenFile(h, s));
      fi.setFh(h.id());
      return 0;
    });
  }

  @Override
  public int read(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
    OpenFile f = open.get(fi.getFh());
    if (f == null) {
      return -errno.ebadf();
    }
    return run("read", path, s -> {
      int want = (int) Math.min(size, buf.remaining());
      synchronized (f) {
        flush(f);
        Window w = f.ra;
        if (w == null || !w.covers(offset, want)) {
          // sequential readers fetch ahead (and the window after that in the background);
          // random ones get exactly what they asked for
          boolean sequential = offset == f.lastReadEnd || offset == 0;
          w = prefetched(f, offset, want);
          if (w == null) {
            int fetch = sequential ? Math.max(want, READ_AHEAD) : want;
            byte[] data = fs.read(f.session, f.handle, offset, fetch);
            w = new Window(offset, data, data.length < fetch);
          }
          f.ra = w;
          if (sequential && !w.eof()) {
            long at = w.start() + w.data().length;
            f.next = CompletableFuture.supplyAsync(() -> {
              byte[] data = fs.read(f.session, f.handle, at, READ_AHEAD);
              return new Window(at, data, data.length < READ_AHEAD);
            }, prefetcher);
          }
        }
        int from = (int) (offset - w.start());
        int n = Math.max(0, Math.min(want, w.data().length - from));
        buf.put(w.data(), from, n);
        f.lastReadEnd = offset + n;
        return n;
      }
    });
  }

  @Override
  public int write(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
    OpenFile f = open.get(fi.getFh());
    if (f == null) {
      return -errno.ebadf();
    }
    if (!f.handle.writable()) {
      return -errno.ebadf();
    }
    return run("write", path, s -> {
      int n = (int) size;
      synchronized (f) {
        if (f.len > 0 && (f.handle.append() ? false : f.start + f.len != offset) || f.len + n > FLUSH_BYTES
            || !f.attrs.isEmpty()) {
          flush(f);
        }
        if (f.buf == null || f.buf.length < f.len + n) {
          // doubling from 64 KiB: most files are small, and a fresh array is zeroed first
          byte[] bigger = new byte[Math.max(f.len + n, Math.min(FLUSH_BYTES, Math.max(64 << 10, 2 * (f.len + n))))];
          if (f.len > 0) {
            System.arraycopy(f.buf, 0, bigger, 0, f.len);
          }
          f.buf = bigger;
        }
        if (f.len == 0) {
          f.start = offset;
        }
        buf.get(f.buf, f.len, n);
        f.len += n;
        f.pendingEnd = f.start + f.len;
        if (f.len >= FLUSH_BYTES) {
          flush(f);
        }
      }
      return n;
    });
  }

  private void flush(OpenFile f) {
    flush(f, false);
  }

  private void cached(long ino, long version) {
    if (cachedVersion.size() >= CACHED_MAX) {
      cachedVersion.clear();
    }
    cachedVersion.put(ino, version);
  }

  /**
   * Writes the pending bytes and attribute changes as one system call, committed on return and
   * durable if {@code durable}; returns whether there were any. Caller holds f's lock.
   */
  private boolean flush(OpenFile f, boolean durable) {
    if (!f.dirty()) {
      return false;
    }
    dropReadAhead(f.handle.ino());
    forget(f.handle.ino());
    Long known = cachedVersion.remove(f.handle.ino());
    long version = fs.writeBack(f.session, f.handle, f.start, f.buf, 0, f.len, f.attrs, durable).version();
    f.unsynced = !durable;
    boolean made = f.created; // if this call created the file (version 1), nobody else has written it
    f.created = false;
    if (made && version == 1 || known != null && version == known + 1) {
      cached(f.handle.ino(), version); // nobody else changed it meanwhile: the kernel's pages are current
    }
    f.len = 0;
    f.pendingEnd = -1;
    f.attrs.clear();
    f.pending = null;
    if (f.buf != null && f.buf.length > FLUSH_BYTES) {
      f.buf = null;
    }
    return true;
  }

  /** Another handle's read-ahead of this inode would now be stale. */
  private void dropReadAhead(long ino) {
    for (OpenFile o : open.values()) {
      if (o.handle.ino() == ino) {
        o.ra = null;
        o.next = null;
      }
    }
  }

  /** The background window if it holds what is asked for (a failed prefetch is simply redone). */
  private static Window prefetched(OpenFile f, long offset, int want) {
    CompletableFuture<Window> next = f.next;
    f.next = null;
    if (next == null) {
      return null;
    }
    try {
      Window w = next.join();
      return w.covers(offset, want) ? w : null;
    } catch (RuntimeException e) {
      return null;
    }
  }

  private void flushQuietly(OpenFile f) {
    try {
      synchronized (f) {
        flush(f);
      }
    } catch (RuntimeException e) {
      log.warn("lost buffered writes to inode {}: {}", f.handle.ino(), e.getMessage());
    }
  }

  private void flushInode(long ino) {
    for (OpenFile f : open.values()) {
      if (f.handle.ino() == ino) {
        synchronized (f) {
          flush(f);
        }
      }
    }
  }

  @Override
  public int truncate(String given, long size, FileInfo fi) {
    String path = RawPaths.path(given, 0);
    return run("truncate", path, s -> {
      OpenFile f = fi == null ? null : open.get(fi.getFh());
      long ino = f != null ? f.handle.ino() : fs.stat(s, path, true).ino();
      flushInode(ino);
      dropReadAhead(ino);
      forget(ino);
      if (f != null && f.handle.writable()) {
        fs.truncate(f.session, f.handle, size);
      } else {
        fs.truncate(s, path, size);
      }
      return 0;
    });
  }

  @Override
  public int flush(String path, FileInfo fi) {
    OpenFile f = open.get(fi.getFh());
    if (f == null) {
      return 0;
    }
    return run("flush", path, s -> { // close(2): what was written through the handle becomes durable
      synchronized (f) {
        if (!flush(f, true) && f.unsynced) {
          fs.sync(s);
        }
        f.unsynced = false;
      }
      return 0;
    });
  }

  /** Flushes pending writes durably (which also makes every earlier change durable), or syncs. */
  @Override
  public int fsync(String path, int datasync, FileInfo fi) {
    OpenFile f = open.get(fi.getFh());
    return run("fsync", path, s -> {
      boolean wrote = false;
      if (f != null) {
        synchronized (f) {
          wrote = flush(f, true);
          f.unsynced = false;
        }
      }
      if (!wrote) {
        fs.sync(s);
      }
      return 0;
    });
  }

  @Override
  public int release(String path, FileInfo fi) {
    OpenFile f = open.remove(fi.getFh());
    if (f == null) {
      return 0;
    }
    f.next = null;
    return run("release", path, s -> {
      try {
        synchronized (f) {
          flush(f);
        }
      } finally {
        fs.close(f.handle);
      }
      return 0;
    });
  }

  /** Stops prefetching and closes the sessions opened for callers (at unmount). */
  void closeSessions() {
    prefetcher.shutdownNow();
    for (Session s : sessions.values()) {
      try {
        kernel.closeSession(s);
      } catch (RuntimeException e) {
        log.debug("closing session of {}: {}", s.principal(), e.getMessage());
      }
    }
    sessions.clear();
  }
}
