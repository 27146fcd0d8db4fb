package org.dbos.kernel.files;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Array;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.Tx;
import org.dbos.kernel.security.AuditLog;
import org.dbos.kernel.files.Stat.Kind;
import org.postgresql.util.PSQLException;

/**
 * DBFS: a POSIX file system in the OS database. Every method is one system call (one transaction,
 * one audit row) named {@code fs.<op>} on object {@code file:<path>} (or {@code file:#<ino>} for
 * calls on an open handle). Paths are absolute, components separated by '/'; "." and ".." are
 * resolved physically ("/.." is "/"); a name is 1..255 bytes without NUL or '/', any bytes: a path
 * String is their UTF-8, each byte that is not UTF-8 written as U+DC80..U+DCFF, as Python's
 * os.fsdecode writes it (see {@link Names}; names and symlink targets come back so). Permissions are POSIX mode
 * bits against the caller's uid, gid and supplementary groups; uid 0 (the admin) bypasses them like
 * root. Failures are {@link FsException}s carrying the errno a POSIX system would return.
 *
 * <p>Atime is not maintained (like mounting with noatime): reads change nothing, so they commit
 * without waiting for the WAL. Writes commit durably: when {@link #write} returns, the data survives
 * a crash, and so does every change committed before it. Metadata changes are atomic and ordered but
 * durable only after the next write, {@link #fsync} or {@link #sync}, as on ext4.
 *
 * <p>Data lives in chunks of {@link Stat#chunkSize()} bytes (default {@value #DEFAULT_CHUNK_SIZE}),
 * copy-on-write and content addressed (SHA-256): see V10__files.sql.
 */
public final class FileSystem {
  public static final long ROOT = 1;
  /** 256 KiB: measured best of 64 KiB..1 MiB for sequential writes and reads (docs/architecture-files.md). */
  public static final int DEFAULT_CHUNK_SIZE = 256 * 1024;
  public static final int NAME_MAX = 255;
  public static final int PATH_MAX = 4096;
  static final int MAX_SYMLINKS = 40;

  // open(2) flags, Linux values (what FUSE passes through).
  public static final int O_RDONLY = 0;
  public static final int O_WRONLY = 1;
  public static final int O_RDWR = 2;
  public static final int O_ACCMODE = 3;
  public static final int O_CREAT = 0100;
  public static final int O_EXCL = 0200;
  public static final int O_TRUNC = 01000;
  public static final int O_APPEND = 02000;
  public static final int O_DIRECTORY = 0200000;
  public static final int O_NOFOLLOW = 0400000;
  /** rename(2) flags. */
  public static final int RENAME_NOREPLACE = 1;
  public static final int RENAME_EXCHANGE = 2;
  /** For {@link #utimens}: set this time to the current time. */
  public static final Instant NOW = Instant.MIN;

  static final int R = 4;
  static final int W = 2;
  static final int X = 1;
  private static final int S_ISUID = 04000;
  private static final int S_ISGID = 02000;
  private static final int S_ISVTX = 01000;

  static final String COLS =
      "i.ino, i.kind, i.mode, i.uid, i.gid, i.size, i.nlink, i.atime, i.mtime, i.ctime, i.version, i.chunk_size";
  /**
   * Resolves a run of names from a directory in one round trip: row k is the inode of names[1..k]. Each
   * step is two nested scalar subqueries, so it is two primary-key probes whatever the plan: as joins,
   * the generic plan hash-joined the walk with whole scans of fs_dentries and fs_inodes (the planner
   * guesses 10 rows for a recursive step), and a join of the entry to its inode, planned while the
   * statistics said fs_inodes held one row, scanned all of fs_inodes for each step. (The row alias x
   * must not be a column's name, or it would mean that column.)
   */
  private static final String WALK = """
      WITH RECURSIVE walk(depth, node) AS (
        SELECT 0, (SELECT x FROM fs_inodes x WHERE x.ino = ?::bigint)
        UNION ALL
        SELECT w.depth + 1, (SELECT x FROM fs_inodes x WHERE x.ino = (
                               SELECT d.ino FROM fs_dentries d WHERE d.parent = (w.node).ino AND d.name = (?::bytea[])[w.depth + 1]))
        FROM walk w WHERE (w.node).ino IS NOT NULL
      )
      SELECT w.depth, (w.node).target, """ + COLS.replace("i.", "(w.node).")
      + " FROM walk w WHERE (w.node).ino IS NOT NULL ORDER BY w.depth";
  /**
   * Sent with the first statement of a call that walks a path or writes (one round trip): plans its
   * statements once per connection. Left to itself PostgreSQL planned a write's first statement anew
   * at every call (0.22 ms of its bind: a custom plan looked cheaper for its array parameter). All of
   * them are primary-key probes; without sequential scans, a plan made while a table was small does
   * not scan it once it has grown.
   */
  static final String PLAN_ONCE = """
      SET LOCAL plan_cache_mode = force_generic_plan;
      SET LOCAL enable_seqscan = off;
      """;
  private static final String STAT_INO = "SELECT " + COLS + " FROM fs_inodes i WHERE i.ino = ?";
  private static final String LOCK_INO = "SELECT " + COLS + " FROM fs_inodes i WHERE i.ino = ? FOR UPDATE";
  private static final String GROUPS = "SELECT gid FROM principal_groups WHERE principal_id = ?";
  /**
   * Creates an inode and its entry: stamps (and locks) the directory, inserts the inode, inserts the
   * entry. The call's last statement (it travels with the COMMIT): raises ENOENT when the directory is
   * gone and EEXIST when the name exists, which rolls the inode back.
   */
  private static final String NEW_INODE_CTES = """
      dir AS (
        UPDATE fs_inodes SET mtime = fs_now(), ctime = fs_now(), nlink = nlink + ? WHERE ino = ? AND kind = 'd'%s
        RETURNING ino),
      i AS (
        INSERT INTO fs_inodes (ino, kind, mode, uid, gid, nlink, chunk_size, target, size, atime, mtime)
        SELECT coalesce(?::bigint, nextval('fs_inode_ids')), ?::text, ?::int, ?::int, ?::int, ?::int, ?::int, ?::bytea,
               ?::bigint, coalesce(?::bigint, fs_now()), coalesce(?::bigint, fs_now()) FROM dir
        RETURNING *),
      entry AS (
        INSERT INTO fs_dentries (parent, name, ino) SELECT dir.ino, ?::bytea, i.ino FROM dir, i
        ON CONFLICT DO NOTHING RETURNING ino)%s
      SELECT CASE WHEN i.ino IS NULL THEN %s WHEN NOT EXISTS (SELECT 1 FROM entry) THEN %s
                  ELSE i.ino END,\s""" + COLS.substring(COLS.indexOf(',') + 2) + " FROM (SELECT) one LEFT JOIN i ON true";
  /** For a file created with content: its blobs and its chunk rows, version 1. */
  private static final String NEW_DATA = """
      ,
      blobs AS (
        INSERT INTO fs_blobs (hash, data) SELECT * FROM unnest(?::bytea[], ?::bytea[]) ON CONFLICT DO NOTHING),
      chunks AS (
        INSERT INTO fs_chunks (ino, chunk_no, from_version, hash, length)
        SELECT i.ino, k, i.version, h, l FROM i, unnest(?::bigint[], ?::bytea[], ?::integer[]) AS t(k, h, l))""";
  private static final String NEW_INODE = AuditLog.audited(
      "WITH " + NEW_INODE_CTES.formatted("", "", "fs_fail('ENOENT')", "fs_fail('EEXIST')"));
  private static final String NEW_FILE = AuditLog.audited(
      "WITH " + NEW_INODE_CTES.formatted("", NEW_DATA, "fs_fail('ENOENT')", "fs_fail('EEXIST')"));
  /** Walks the names of a directory's path and counts the steps that find the inode and version expected. */
  private static final String WALK_KNOWN = """
      WITH RECURSIVE walk(depth, node) AS (
        SELECT 0, (SELECT x FROM fs_inodes x WHERE x.ino = 1)
        UNION ALL
        SELECT w.depth + 1, (SELECT x FROM fs_inodes x WHERE x.ino = (
                               SELECT d.ino FROM fs_dentries d WHERE d.parent = (w.node).ino AND d.name = (?::bytea[])[w.depth + 1]))
        FROM walk w WHERE (w.node).ino IS NOT NULL
      ),
      seen AS (
        SELECT count(*) AS n FROM walk w JOIN unnest(?::bigint[], ?::bigint[]) WITH ORDINALITY AS e(ino, version, k)
          ON e.k = w.depth + 1 AND (w.node).ino = e.ino AND (w.node).version = e.version),
      """;
  /**
   * {@link #NEW_INODE} in a directory whose path the file system walked before (see {@link #chains}):
   * walks it again and creates only if it finds the same inodes at the same versions (so with the
   * same permissions), else raises a serialization failure and the kernel runs the call again, the
   * slow way. An existing name is EEXIST if the last parameter says so, else also a conflict.
   */
  private static final String NEW_INODE_KNOWN = AuditLog.audited(WALK_KNOWN + NEW_INODE_CTES.formatted(
      " AND (SELECT n FROM seen) = ?", "", "fs_conflict()", "CASE WHEN ? THEN fs_fail('EEXIST') ELSE fs_conflict() END"));
  private static final String NEW_FILE_KNOWN = AuditLog.audited(WALK_KNOWN + NEW_INODE_CTES.formatted(
      " AND (SELECT n FROM seen) = ?", NEW_DATA, "fs_conflict()", "CASE WHEN ? THEN fs_fail('EEXIST') ELSE fs_conflict() END"));
  /** SQLSTATE of fs_fail (V12__files_fail.sql): the message is the errno's name. */
  private static final String FS_FAIL = "DBFSE";
  private static final String NEW_ENTRY = "INSERT INTO fs_dentries (parent, name, ino) VALUES (?, ?, ?) ON CONFLICT DO NOTHING";
  private static final String DROP_ENTRY = "DELETE FROM fs_dentries WHERE parent = ? AND name = ? AND ino = ?";
  private static final String MOVE_ENTRY = "UPDATE fs_dentries SET parent = ?, name = ? WHERE parent = ? AND name = ? AND ino = ?";
  /** Locks a directory for a change of its entries and stamps it; 0 rows: it was removed meanwhile. */
  private static final String TOUCH_DIR =
      "UPDATE fs_inodes SET mtime = fs_now(), ctime = fs_now(), nlink = nlink + ? WHERE ino = ? AND kind = 'd'";
  private static final String ADD_LINKS =
      "UPDATE fs_inodes SET nlink = nlink + ?, ctime = fs_now() WHERE ino = ? RETURNING nlink";
  private static final String HAS_ENTRIES = "SELECT EXISTS (SELECT 1 FROM fs_dentries WHERE parent = ?)";
  private static final String LIST = "SELECT d.name, " + COLS
      + " FROM fs_dentries d JOIN fs_inodes i ON i.ino = d.ino WHERE d.parent = ? ORDER BY d.name";
  private static final String IS_ANCESTOR = """
      WITH RECURSIVE up(ino) AS (
        SELECT ?::bigint
        UNION
        SELECT d.parent FROM up JOIN fs_dentries d ON d.ino = up.ino WHERE up.ino <> 1
      )
      SELECT EXISTS (SELECT 1 FROM up WHERE ino = ?)""";
  /** Serializes directory moves between parents, like Linux's s_vfs_rename_mutex: no cycles. */
  private static final long RENAME_LOCK = 0x6462667352656eL;
  /** Serializes purges (every node runs one): two would delete the same history rows in different orders. */
  private static final long PURGE_LOCK = 0x64626673507267L;
  private static final String READ = """
      SELECT i.size, c.chunk_no,
             substring(b.data FROM (greatest(?::bigint, c.chunk_no * ?) - c.chunk_no * ?)::int + 1
                       FOR (least(?::bigint, (c.chunk_no + 1) * ?) - greatest(?::bigint, c.chunk_no * ?))::int)
      FROM fs_inodes i
      LEFT JOIN fs_chunks c ON c.ino = i.ino AND c.to_version IS NULL AND c.chunk_no BETWEEN ? AND ?
      LEFT JOIN fs_blobs b ON b.hash = c.hash
      WHERE i.ino = ? AND i.kind = 'f'""";
  private static final String CHUNKS = """
      SELECT c.chunk_no, b.data FROM fs_chunks c JOIN fs_blobs b ON b.hash = c.hash
      WHERE c.ino = ? AND c.to_version IS NULL AND c.chunk_no = ANY (?)""";
  /**
   * The mode after a write or truncate, as Linux leaves it (Call#killed): a caller that is not root
   * (first parameter) clears set-user-ID, and set-group-ID when the group may execute or the caller
   * (gid, principal: the other two) is not in the file's group. {@link #killArgs} gives the parameters.
   */
  private static final String KILL_PRIVS = """
      CASE WHEN ? THEN mode & ~(2048 | CASE WHEN (mode & 8) <> 0 OR NOT (gid = ? OR gid IN (
        SELECT g.gid FROM principal_groups g WHERE g.principal_id = ?)) THEN 1024 ELSE 0 END) ELSE mode END""";
  /**
   * Locks the inode of a write, extends it and stamps the new version the chunks get, and fetches the
   * current content of the chunks the write only partly overwrites (at most its first and last) in the
   * same round trip: one row per fetched chunk, or one without. The last is needed only if the file
   * extends past the write: a chunk holds no bytes past the size. (The chunks are found by the inode
   * parameter, not by the updated row: joined to that, the plan probed the index by chunk number alone.)
   */
  private static final String BUMP = """
      WITH i AS (
        UPDATE fs_inodes AS i SET mode = %s, size = greatest(size, ?), version = version + 1,
               mtime = fs_now(), ctime = fs_now()
        WHERE ino = ? RETURNING %s
      )
      SELECT i.*, p.chunk_no, p.data FROM i LEFT JOIN LATERAL (
        SELECT c.chunk_no, b.data FROM fs_chunks c JOIN fs_blobs b ON b.hash = c.hash
        WHERE c.ino = ? AND c.to_version IS NULL AND c.chunk_no = ANY (?::bigint[])
          AND (c.chunk_no <> ? OR i.size > ?)) p ON true""".formatted(KILL_PRIVS, COLS);
  private static final String SET_SIZE = "UPDATE fs_inodes SET mode = " + KILL_PRIVS
      + ", size = ?, version = version + 1, mtime = fs_now(), ctime = fs_now() WHERE ino = ? RETURNING version, mode";
  private static final String SET_MODE =
      "UPDATE fs_inodes AS i SET mode = ?, ctime = fs_now(), version = version + 1 WHERE ino = ? RETURNING " + COLS;
  private static final String SET_ATTR = """
      UPDATE fs_inodes AS i SET mode = ?, uid = ?, gid = ?,
             atime = CASE WHEN ? THEN atime WHEN ? THEN fs_now() ELSE ?::bigint END,
             mtime = CASE WHEN ? THEN mtime WHEN ? THEN fs_now() ELSE ?::bigint END,
             ctime = fs_now(), version = version + ?
      WHERE ino = ? RETURNING""" + " " + COLS;
  private static final String NEW_BLOB = "INSERT INTO fs_blobs (hash, data) VALUES (?, ?) ON CONFLICT DO NOTHING";
  private static final String CLOSE_CHUNKS = """
      UPDATE fs_chunks SET to_version = ?, closed_at = now()
      WHERE ino = ? AND to_version IS NULL AND chunk_no BETWEEN ? AND ?""";
  /**
   * Stores a write's new blobs, closes the current rows of the chunks it touches and inserts their new
   * rows, in one round trip. The count forces the closing to run before the inserts (the current rows
   * are unique per chunk). {@code %1$s} gives the version.
   */
  private static final String STORE = """
      blobs AS (
        INSERT INTO fs_blobs (hash, data) SELECT * FROM unnest(?::bytea[], ?::bytea[]) ON CONFLICT DO NOTHING),
      closed AS (
        UPDATE fs_chunks SET to_version = (%1$s), closed_at = now()
        WHERE ino = ? AND to_version IS NULL AND chunk_no BETWEEN ? AND ? RETURNING 1)
      INSERT INTO fs_chunks (ino, chunk_no, from_version, hash, length)
      SELECT ?, k, (%1$s), h, l FROM unnest(?::bigint[], ?::bytea[], ?::integer[]) AS t(k, h, l)
      WHERE (SELECT count(*) FROM closed) >= 0""";
  /** {@link #STORE} after {@link #BUMP}, which gave the version. */
  private static final String STORE_CHUNKS = "WITH " + STORE.formatted("?::bigint");
  private static final String STORE_CHUNKS_AUDITED = AuditLog.audited(STORE_CHUNKS);
  /**
   * A whole write in one statement, for a handle that knows the inode's version and size and writes
   * from a chunk boundary to at least the end of file (no chunk keeps old bytes): bumps the inode only
   * if it still has that version (else raises a serialization failure, and the kernel runs the call
   * again, the slow way), applies the attribute changes that follow the write (null: keep), stores
   * the chunks. Returns the inode.
   */
  private static final String WRITE_KNOWN = AuditLog.audited("""
      WITH i AS (
        UPDATE fs_inodes AS i SET size = greatest(size, ?), version = version + 1,
               mode = coalesce(?::int, mode), uid = coalesce(?::int, uid), gid = coalesce(?::int, gid),
               atime = CASE WHEN ? THEN atime WHEN ? THEN fs_now() ELSE ?::bigint END,
               mtime = CASE WHEN ? OR ? THEN fs_now() ELSE ?::bigint END, ctime = fs_now()
        WHERE ino = ? AND version = ? AND kind = 'f' RETURNING\s""" + COLS + """
      ),
      v AS (SELECT coalesce((SELECT version FROM i), fs_conflict()) AS version),
      """ + STORE.formatted("SELECT version FROM v").replace("\nINSERT INTO fs_chunks", ",\nchunks AS (INSERT INTO fs_chunks")
      + ")\nSELECT i.* FROM v, i");
  /** The first nine arguments of {@link #SET_ATTR} as {@link #WRITE_KNOWN} takes them: no attribute changes. */
  private static final Object[] KEEP_ATTRS = {null, null, null, true, false, null, true, false, null};

  /** {@link #KEEP_ATTRS} but for the mode. */
  private static Object[] keepAttrsBut(int mode) {
    Object[] a = KEEP_ATTRS.clone();
    a[0] = mode;
    return a;
  }
  private static final String NEW_CHUNK =
      "INSERT INTO fs_chunks (ino, chunk_no, from_version, hash, length) VALUES (?, ?, ?, ?, ?)";
  private static final String DROP_INODE = "DELETE FROM fs_inodes WHERE ino = ? RETURNING version";
  private static final String CLOSE_ALL_CHUNKS =
      "UPDATE fs_chunks SET to_version = ?, closed_at = now() WHERE ino = ? AND to_version IS NULL";
  private static final String NEW_ORPHAN = "INSERT INTO fs_orphans (ino, node_id) VALUES (?, ?::uuid) ON CONFLICT DO NOTHING";
  private static final String DEAD_ORPHANS = """
      DELETE FROM fs_orphans o WHERE o.node_id IS NULL OR o.node_id = ?::uuid OR NOT EXISTS (
        SELECT 1 FROM nodes n WHERE n.id = o.node_id AND n.status = 'alive') RETURNING o.ino""";
  /** Rows of each kind one {@link #purge} call removes at most, so that its lock on fs_blobs is short. */
  static final int PURGE_BATCH = 10_000;
  private static final String PURGE_VERSIONS = """
      DELETE FROM fs_inode_history WHERE (ino, version, replaced_at) IN (
        SELECT ino, version, replaced_at FROM fs_inode_history WHERE replaced_at < now() - ?::interval
        ORDER BY replaced_at LIMIT ?)""";
  private static final String PURGE_NAMES = """
      DELETE FROM fs_dentry_history WHERE (parent, name, ino, removed_at) IN (
        SELECT parent, name, ino, removed_at FROM fs_dentry_history WHERE removed_at < now() - ?::interval
        ORDER BY removed_at LIMIT ?)""";
  /** Chunk rows of versions closed before the horizon; returns the blobs they used and how many rows each. */
  private static final String PURGE_CHUNKS = """
      WITH gone AS (
        DELETE FROM fs_chunks c USING (
          SELECT ino, chunk_no, from_version FROM fs_chunks
          WHERE to_version IS NOT NULL AND closed_at < now() - ?::interval ORDER BY closed_at LIMIT ?) old
        WHERE (c.ino, c.chunk_no, c.from_version) = (old.ino, old.chunk_no, old.from_version)
        RETURNING c.hash)
      SELECT hash, count(*) FROM gone GROUP BY hash""";
  /** A separate statement: it must see the chunk rows the one before deleted (a CTE's snapshot would not). */
  private static final String PURGE_BLOBS =
      "DELETE FROM fs_blobs b WHERE b.hash = ANY (?) AND NOT EXISTS (SELECT 1 FROM fs_chunks c WHERE c.hash = b.hash)";

  private static final Map<Kernel, FileSystem> INSTANCES = new ConcurrentHashMap<>();

  private final Kernel kernel;
  private final int chunkSize;
  private final AtomicLong nextHandle = new AtomicLong(1);
  private final ConcurrentHashMap<Long, FileHandle> handles = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<Long, Integer> openCounts = new ConcurrentHashMap<>();
  private final Set<Long> orphans = ConcurrentHashMap.newKeySet();
  /**
   * Directories by path, with the inodes from the root down to them as a walk last found them: a
   * create there checks the caller's permissions against these and sends one statement ({@link
   * #NEW_INODE_KNOWN}) instead of walking first. A hint only: the statement verifies it.
   */
  private final ConcurrentHashMap<String, List<Stat>> chains = new ConcurrentHashMap<>();
  static final int CHAINS_MAX = 10_000;
  /** The inode of each open handle as it last saw it (at open, after its writes): see {@link #WRITE_KNOWN}. */
  private final ConcurrentHashMap<Long, Stat> known = new ConcurrentHashMap<>();
  /**
   * Handles whose one-statement write found the inode changed by another writer: they write the
   * general way until closed, so two handles writing one file in turn do not conflict (and wait out
   * the kernel's retry backoff) at every write.
   */
  private final Set<Long> contended = ConcurrentHashMap.newKeySet();
  /**
   * Files {@link #openNew} answered before writing them, by handle: each is written by its handle's
   * first write-back, or by the first other call of this file system that might see it.
   */
  private final ConcurrentHashMap<Long, Pending> pending = new ConcurrentHashMap<>();
  /** The paths of {@link #pending}: a second create of one of them is an ordinary open (EEXIST under O_EXCL). */
  private final ConcurrentHashMap<String, Long> pendingPaths = new ConcurrentHashMap<>();
  /** Handles whose pending create could not be written (the name was taken meanwhile, say): their error. */
  private final ConcurrentHashMap<Long, FsException> failed = new ConcurrentHashMap<>();
  /** Inode numbers taken from fs_inode_ids ahead, for files created before they are written. */
  private final Deque<Long> inodeNumbers = new ArrayDeque<>();
  static final int INODE_NUMBERS = 256;
  /** Changes committed without the WAL flush that have returned, and how many of them a durable commit covered. */
  private final AtomicLong deferred = new AtomicLong();
  private final AtomicLong covered = new AtomicLong();
  /** Small files created at once by concurrent callers, written together. */
  private final GroupCreate groupCreate;

  /** The file system of {@code kernel}: one per kernel, so open-file semantics hold across front ends. */
  public static FileSystem of(Kernel kernel) {
    return INSTANCES.computeIfAbsent(kernel, k -> {
      var fs = new FileSystem(k, DEFAULT_CHUNK_SIZE);
      k.onClose(() -> INSTANCES.remove(k));
      return fs;
    });
  }

  /** A file system whose new files use {@code chunkSize}-byte chunks (benchmarks compare sizes). */
  public FileSystem(Kernel kernel, int chunkSize) {
    this.kernel = kernel;
    this.chunkSize = chunkSize;
    this.groupCreate = new GroupCreate(kernel, chunkSize, deferred, covered);
    reclaimOrphans();
  }

  public Kernel kernel() {
    return kernel;
  }

  // ---- metadata ------------------------------------------------------------------------------

  /** stat (follow = true) or lstat (false). ENOENT, ENOTDIR, EACCES (search permission), ELOOP. */
  public Stat stat(Session s, String path, boolean follow) {
    return call(s, "fs.stat", object(path), true,
        tx -> existing(new Call(tx, s), path, follow).inode());
  }

  /**
   * Like {@link #stat}, but a missing path is an empty result, not an error: lookups of names that
   * do not exist (every create, and git's probes) then cost a read, not a failed call. Other errors
   * (EACCES, ENOTDIR, ELOOP) still throw.
   */
  public Optional<Stat> find(Session s, String path, boolean follow) {
    return call(s, "fs.stat", object(path), true, tx -> {
      try {
        return Optional.of(existing(new Call(tx, s), path, follow).inode());
      } catch (FsException e) {
        if (e.errno() == Errno.ENOENT) {
          return Optional.<Stat>empty();
        }
        throw e;
      }
    });
  }

  /** fstat on an open handle. EBADF if the inode is gone. */
  public Stat stat(Session s, FileHandle h) {
    settle(h);
    return kernel.callChecked(s, "fs.fstat", "file:#" + h.ino(), true, tx -> inode(tx, h.ino()));
  }

  /** The entries of a directory (without "." and ".."), by name. ENOTDIR, EACCES (needs read). */
  public List<DirEntry> list(Session s, String path) {
    return call(s, "fs.list", object(path), true, tx -> {
      var c = new Call(tx, s);
      Stat dir = existing(c, path, true).inode();
      if (!dir.isDirectory()) {
        throw new FsException(Errno.ENOTDIR, path);
      }
      c.require(dir, R, path);
      return tx.query(LIST, rs -> new DirEntry(rs.getBytes(1), stat(rs, 2)), dir.ino());
    });
  }

  /** access(2): F_OK (0) or a mask of R_OK 4, W_OK 2, X_OK 1. EACCES when not allowed. */
  public void access(Session s, String path, int mask) {
    call(s, "fs.access", object(path), true, tx -> {
      var c = new Call(tx, s);
      c.require(existing(c, path, true).inode(), mask & 7, path);
      return null;
    });
  }

  /** Creates a directory. EEXIST (also for a symlink), ENOENT (no parent), EACCES (parent not writable). */
  public Stat mkdir(Session s, String path, int mode) {
    Stat st = call(s, "fs.mkdir", object(path), false, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      if (c.createKnown(path, Kind.DIRECTORY, mode & 07777, null, true)) {
        return null;
      }
      Resolved r = resolve(c, path, false);
      if (r.inode() != null) {
        throw new FsException(Errno.EEXIST, path);
      }
      return c.createEntry(r, Kind.DIRECTORY, mode & 07777, null, path);
    });
    List<Stat> above = chains.get(parentPath(path));
    if (above != null && isPlain(path)) { // files are created in a new directory next
      var chain = new ArrayList<>(above);
      chain.add(st);
      remember(path, chain);
    }
    return st;
  }

  /**
   * mknod(2) of a named pipe or a socket file ({@link Kind#FIFO}, {@link Kind#SOCKET}; EINVAL for other
   * kinds): an inode with attributes only, whose data the opening machine's kernel moves (the FUSE
   * mount lets it; {@link #open} of one through this API is ENXIO). EEXIST if the name exists.
   */
  public Stat mknod(Session s, String path, Kind kind, int mode) {
    if (kind != Kind.FIFO && kind != Kind.SOCKET) {
      throw new FsException(Errno.EINVAL, "mknod makes named pipes and sockets, not " + kind);
    }
    return call(s, "fs.mknod", object(path), false, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      if (c.createKnown(path, kind, mode & 07777, null, true)) {
        return null;
      }
      Resolved r = resolve(c, path, false);
      if (r.inode() != null) {
        throw new FsException(Errno.EEXIST, path);
      }
      return c.createEntry(r, kind, mode & 07777, null, path);
    });
  }

  /** Removes an empty directory. ENOTDIR, ENOTEMPTY, EBUSY (root), EINVAL (last name "."). */
  public void rmdir(Session s, String path) {
    call(s, "fs.rmdir", object(path), false, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      if (path.endsWith("/.") || path.equals(".")) {
        throw new FsException(Errno.EINVAL, path);
      }
      Resolved r = existing(c, path, false);
      if (!r.inode().isDirectory()) {
        throw new FsException(Errno.ENOTDIR, path);
      }
      if (r.parent() == null) {
        throw new FsException(Errno.EBUSY, path);
      }
      c.requireRemove(r, path);
      c.removeDirectory(r, path);
      return null;
    });
  }

  /** Removes a name; the inode goes with its last link and last open handle. EISDIR for a directory. */
  public void unlink(Session s, String path) {
    call(s, "fs.unlink", object(path), false, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      Resolved r = existing(c, path, false);
      if (r.inode().isDirectory()) {
        throw new FsException(Errno.EISDIR, path);
      }
      c.requireRemove(r, path);
      touchDir(tx, r.parent().ino(), 0, path);
      if (tx.update(DROP_ENTRY, r.parent().ino(), r.name(), r.inode().ino()) == 0) {
        throw new FsException(Errno.ENOENT, path);
      }
      c.dropLink(r.inode().ino());
      return null;
    });
  }

  /** A hard link {@code newPath} to {@code existing} (not followed). EPERM for a directory, EEXIST. */
  public Stat link(Session s, String existing, String newPath) {
    return call(s, "fs.link", object(newPath), false, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      Stat src = existing(c, existing, false).inode();
      if (src.isDirectory()) {
        throw new FsException(Errno.EPERM, existing + " is a directory");
      }
      Resolved dst = resolve(c, newPath, false);
      if (dst.inode() != null) {
        throw new FsException(Errno.EEXIST, newPath);
      }
      c.requireDir(dst.parent(), W | X, newPath);
      touchDir(tx, dst.parent().ino(), 0, newPath);
      if (tx.update(NEW_ENTRY, dst.parent().ino(), dst.name(), src.ino()) == 0) {
        throw new FsException(Errno.EEXIST, newPath);
      }
      int nlink = tx.queryOne(ADD_LINKS, rs -> rs.getInt(1), 1, src.ino())
          .orElseThrow(() -> new FsException(Errno.ENOENT, existing));
      return new Stat(src.ino(), src.kind(), src.mode(), src.uid(), src.gid(), src.size(), nlink, src.atime(),
          src.mtime(), Instant.now(), src.version(), src.chunkSize());
    });
  }

  /** A symbolic link at {@code linkPath} holding {@code target} (not checked). EEXIST, ENAMETOOLONG. */
  public Stat symlink(Session s, String target, String linkPath) {
    byte[] t = Names.bytes(target);
    if (t.length == 0) {
      throw new FsException(Errno.ENOENT, "empty symlink target");
    }
    if (t.length >= PATH_MAX) {
      throw new FsException(Errno.ENAMETOOLONG, "symlink target");
    }
    return call(s, "fs.symlink", object(linkPath), false, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      Resolved r = resolve(c, linkPath, false);
      if (r.inode() != null) {
        throw new FsException(Errno.EEXIST, linkPath);
      }
      return c.createEntry(r, Kind.SYMLINK, 0777, t, linkPath);
    });
  }

  /** The target of a symlink. EINVAL if {@code path} is not one. */
  public String readlink(Session s, String path) {
    return call(s, "fs.readlink", object(path), true, tx -> {
      var c = new Call(tx, s);
      Stat l = existing(c, path, false).inode();
      if (!l.isSymlink()) {
        throw new FsException(Errno.EINVAL, path + " is not a symlink");
      }
      byte[] t = tx.queryOne("SELECT target FROM fs_inodes WHERE ino = ?", rs -> rs.getBytes(1), l.ino()).orElseThrow();
      return Names.string(t);
    });
  }

  /** chmod: owner or root, else EPERM. A non-member's set-group-ID bit is dropped, as on Linux. */
  public Stat chmod(Session s, String path, int mode) {
    return setattr(s, "fs.chmod", path, true, SetAttr.chmod(mode));
  }

  /**
   * chown (follow) or lchown; -1 leaves an id unchanged. Only root changes the owner; the owner may
   * set the group to one of its groups; else EPERM. Clears set-user-ID (and set-group-ID if
   * group-executable) of a non-directory, as Linux does.
   */
  public Stat chown(Session s, String path, int uid, int gid, boolean follow) {
    return setattr(s, "fs.chown", path, follow, SetAttr.chown(uid, gid));
  }

  /**
   * utimens: sets atime and mtime; null leaves one unchanged, {@link #NOW} sets the current time. Setting
   * the current time needs ownership or write permission; any other time needs ownership (else EPERM).
   */
  public Stat utimens(Session s, String path, Instant atime, Instant mtime, boolean follow) {
    return setattr(s, "fs.utimens", path, follow, SetAttr.utimens(atime, mtime));
  }

  /**
   * fchmod, fchown or futimens: {@code a} applied to the inode of an open handle, by chmod's, chown's
   * or utimens's rules. Reaches an unlinked open file, which no path names any more. EBADF if closed.
   */
  public Stat setattr(Session s, FileHandle h, SetAttr a) {
    if (!handles.containsKey(h.id())) {
      throw new FsException(Errno.EBADF, "handle " + h.id() + " is closed");
    }
    settle(h);
    String call = a.isChmod() ? "fs.fchmod" : a.isChown() ? "fs.fchown" : "fs.futimens";
    Stat st = kernel.callChecked(s, call, "file:#" + h.ino(), false, tx -> {
      deferDurability(tx);
      return new Call(tx, s).setattr(inode(tx, h.ino()), List.of(a), true, "#" + h.ino());
    });
    known.computeIfPresent(h.id(), (id, before) -> st); // the handle's next write need not conflict
    return st;
  }

  private Stat setattr(Session s, String call, String path, boolean follow, SetAttr a) {
    return call(s, call, object(path), false, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      return c.setattr(existing(c, path, follow).inode(), List.of(a), true, path);
    });
  }

  /**
   * What {@code a} would make of {@code st} when it is certain to be allowed without asking the
   * database (the caller is root, or the owner changing the mode without set-group-ID or the times),
   * else empty. A front end may then answer at once and apply the change later with {@link #writeBack}.
   * Times set to {@link #NOW} show as {@code now}.
   */
  public static Optional<Stat> preview(Session s, Stat st, SetAttr a, Instant now) {
    boolean root = isRoot(s);
    boolean owner = st.uid() == s.uid();
    if (!root && (a.isChown() || !owner || a.isChmod() && (a.mode() & S_ISGID) != 0)) {
      return Optional.empty();
    }
    int mode = a.isChmod() ? a.mode() : a.isChown() ? chownMode(st, a) : st.mode();
    int uid = a.isChown() && a.uid() != -1 ? a.uid() : st.uid();
    int gid = a.isChown() && a.gid() != -1 ? a.gid() : st.gid();
    return Optional.of(new Stat(st.ino(), st.kind(), mode, uid, gid, st.size(), st.nlink(),
        a.atime() == null ? st.atime() : a.atime() == NOW ? now : a.atime(),
        a.mtime() == null ? st.mtime() : a.mtime() == NOW ? now : a.mtime(), now, st.version() + 1, st.chunkSize()));
  }

  /** Root, or the kernel itself: permissions do not stop it, and its writes keep set-user-ID. */
  private static boolean isRoot(Session s) {
    return s.uid() == 0 || Kernel.SYSTEM.equals(s.principal());
  }

  /** The parameters of {@link #KILL_PRIVS} for a write or truncate by {@code s}. */
  private static Object[] killArgs(Session s) {
    return new Object[] {!isRoot(s), s.gid(), s.principalId()};
  }

  /**
   * {@code mode} without set-user-ID, and without set-group-ID if the group may execute or {@code
   * sgidAnyway}: what Linux leaves after a chown, or a write by a caller without CAP_FSETID.
   */
  private static int withoutSetId(int mode, boolean sgidAnyway) {
    return mode & ~(S_ISUID | ((mode & 010) != 0 || sgidAnyway ? S_ISGID : 0));
  }

  /** chown clears set-user-ID (and set-group-ID if group-executable) of a non-directory, as Linux does. */
  private static int chownMode(Stat st, SetAttr a) {
    return !st.isDirectory() && (a.uid() != -1 || a.gid() != -1) ? withoutSetId(st.mode(), false) : st.mode();
  }

  private static Long time(Instant t) {
    return t == null || t == NOW ? null : t.getEpochSecond() * 1_000_000_000L + t.getNano();
  }

  /**
   * What Linux does to a file that a caller without CAP_FSETID writes or truncates, on its own: clears
   * set-user-ID, and set-group-ID as {@link #KILL_PRIVS} says. Needs write permission, not ownership
   * (the kernel's FUSE module asks for it so, as a chmod, before such a write). Returns the inode.
   */
  public Stat dropSetId(Session s, String path) {
    return call(s, "fs.chmod", object(path), false, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      Stat f = existing(c, path, true).inode();
      c.require(f, W, path);
      Stat k = c.killed(f);
      if (k.mode() == f.mode()) {
        return f;
      }
      return tx.queryOne(SET_MODE, rs -> stat(rs, 1), k.mode(), f.ino()).orElseThrow();
    });
  }

  /**
   * rename(2): atomically points {@code to} at what {@code from} names, replacing {@code to} (a file by a
   * file, an empty directory by a directory). EINVAL when moving a directory into its own subtree,
   * ENOTDIR/EISDIR for mismatched kinds, ENOTEMPTY, EEXIST with {@link #RENAME_NOREPLACE}, EBUSY for
   * the root. Renaming a name onto another link of the same inode does nothing.
   */
  public void rename(Session s, String from, String to, int flags) {
    if ((flags & RENAME_EXCHANGE) != 0 || (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0) {
      throw new FsException(Errno.EINVAL, "unsupported rename flags " + flags);
    }
    call(s, "fs.rename", object(from), false, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      if (lastName(from).equals(".") || lastName(from).equals("..") || lastName(to).equals(".") || lastName(to).equals("..")) {
        throw new FsException(Errno.EINVAL, from + " -> " + to);
      }
      Resolved src = existing(c, from, false);
      if (src.parent() == null) {
        throw new FsException(Errno.EBUSY, from);
      }
      Resolved dst = resolve(c, to, false);
      if (dst.parent() == null) {
        throw new FsException(Errno.EBUSY, to);
      }
      Stat moved = src.inode();
      Stat old = dst.inode();
      if (old != null && (flags & RENAME_NOREPLACE) != 0) {
        throw new FsException(Errno.EEXIST, to);
      }
      if (old != null && old.ino() == moved.ino()) {
        return null;
      }
      c.requireRemove(src, from);
      c.requireDir(dst.parent(), W | X, to);
      if (old != null) {
        c.requireRemove(dst, to);
      }
      boolean dir = moved.isDirectory();
      boolean across = src.parent().ino() != dst.parent().ino();
      if (dir && across) {
        if (!c.root()) {
          c.require(moved, W, from);
        }
        tx.queryOne("SELECT pg_advisory_xact_lock(?)", rs -> null, RENAME_LOCK);
        if (tx.queryOne(IS_ANCESTOR, rs -> rs.getBoolean(1), dst.parent().ino(), moved.ino()).orElse(false)) {
          throw new FsException(Errno.EINVAL, "cannot move " + from + " into its own subtree " + to);
        }
      }
      if (old != null) {
        if (dir && !old.isDirectory()) {
          throw new FsException(Errno.ENOTDIR, to);
        }
        if (!dir && old.isDirectory()) {
          throw new FsException(Errno.EISDIR, to);
        }
      }
      // Lock both parents in inode order (no deadlock between opposite renames).
      long a = Math.min(src.parent().ino(), dst.parent().ino());
      long b = Math.max(src.parent().ino(), dst.parent().ino());
      touchDir(tx, a, 0, a == src.parent().ino() ? from : to);
      if (b != a) {
        touchDir(tx, b, 0, b == src.parent().ino() ? from : to);
      }
      if (old != null) {
        if (old.isDirectory()) {
          c.removeDirectory(dst, to);
        } else {
          if (tx.update(DROP_ENTRY, dst.parent().ino(), dst.name(), old.ino()) == 0) {
            throw new FsException(Errno.ENOENT, to);
          }
          c.dropLink(old.ino());
        }
      }
      if (tx.update(MOVE_ENTRY, dst.parent().ino(), dst.name(), src.parent().ino(), src.name(), moved.ino()) == 0) {
        throw new FsException(Errno.ENOENT, from);
      }
      tx.update("UPDATE fs_inodes SET ctime = fs_now() WHERE ino = ?", moved.ino());
      if (dir && across) {
        touchDir(tx, src.parent().ino(), -1, from);
        touchDir(tx, dst.parent().ino(), 1, to);
      }
      return null;
    });
  }

  public void rename(Session s, String from, String to) {
    rename(s, from, to, 0);
  }

  /** statfs: used blocks are the database's size for the file data; "free" is an unbounded 1 TiB. */
  public StatFs statfs(Session s) {
    return call(s, "fs.statfs", "file:/", true, tx -> {
      long files = tx.queryLong("SELECT count(*) FROM fs_inodes");
      long used = tx.queryLong("SELECT pg_total_relation_size('fs_blobs') + pg_total_relation_size('fs_chunks')");
      long bs = 4096;
      long free = (1L << 40) / bs;
      return new StatFs(bs, used / bs + free, free, files, (1L << 32) - files, NAME_MAX);
    });
  }

  // ---- open files ----------------------------------------------------------------------------

  /**
   * open(2) with {@code flags} as in Linux (O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NOFOLLOW,
   * O_DIRECTORY; O_RDONLY/O_WRONLY/O_RDWR). With O_CREAT a missing file is created with {@code mode}
   * (the creating open succeeds whatever the mode). EISDIR when opening a directory for writing;
   * ELOOP for a symlink under O_NOFOLLOW; EEXIST under O_CREAT|O_EXCL; EACCES per mode bits.
   */
  public FileHandle open(Session s, String path, int flags, int mode) {
    boolean changes = (flags & (O_CREAT | O_TRUNC)) != 0;
    Stat st = call(s, "fs.open", object(path), !changes, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      boolean excl = (flags & O_CREAT) != 0 && (flags & O_EXCL) != 0;
      if ((flags & O_CREAT) != 0 && c.createKnown(path, Kind.FILE, mode & 07777, null, excl)) {
        return null;
      }
      Resolved r = resolve(c, path, !excl && (flags & O_NOFOLLOW) == 0);
      Stat f = r.inode();
      if (f == null) {
        if ((flags & O_CREAT) == 0) {
          throw new FsException(Errno.ENOENT, path);
        }
        return c.createEntry(r, Kind.FILE, mode & 07777, null, path);
      }
      if (excl) {
        throw new FsException(Errno.EEXIST, path);
      }
      if (f.isSymlink()) {
        throw new FsException(Errno.ELOOP, path);
      }
      if (f.isSpecial()) {
        throw new FsException(Errno.ENXIO, path + " is a named pipe or socket: open it through a mount");
      }
      boolean write = (flags & O_ACCMODE) != O_RDONLY;
      if (f.isDirectory() && (write || (flags & O_CREAT) != 0)) {
        throw new FsException(Errno.EISDIR, path);
      }
      if (!f.isDirectory() && (flags & O_DIRECTORY) != 0) {
        throw new FsException(Errno.ENOTDIR, path);
      }
      c.require(f, ((flags & O_ACCMODE) != O_WRONLY ? R : 0) | (write || (flags & O_TRUNC) != 0 ? W : 0), path);
      if ((flags & O_TRUNC) != 0 && f.isFile() && f.size() > 0) {
        return truncate(tx, f.ino(), 0, killArgs(s));
      }
      return f;
    });
    var h = new FileHandle(nextHandle.getAndIncrement(), st.ino(), flags, st.chunkSize(), st);
    handles.put(h.id(), h);
    known.put(h.id(), st);
    openCounts.merge(st.ino(), 1, Integer::sum);
    return h;
  }

  /**
   * Creates {@code path}, which must not exist (EEXIST), holding {@code data}, durably on return: what
   * open with O_CREAT|O_EXCL, write, fsync and close do, as one system call ({@code fs.create}) — one
   * round trip to the database when the file system knows the directory.
   */
  public Stat createFile(Session s, String path, int mode, byte[] data) {
    // as open, write and close would (the new file's group is the caller's: only group-execute decides)
    int created = data.length > 0 && !isRoot(s) ? withoutSetId(mode & 07777, false) : mode & 07777;
    List<Stat> chain = isPlain(path) ? chains.get(parentPath(path)) : null;
    if (chain != null && fits(path) && mayCreate(s, chain) && !pendingPaths.containsKey(path)) {
      settleAll();
      Stat st = inGroup(s, path, chain, true, null, created, s.uid(), newGid(s, chain.getLast()), null, null, data);
      if (st != null) {
        return st;
      }
    }
    return call(s, "fs.create", object(path), false, tx -> {
      durable(tx);
      var c = new Call(tx, s);
      if (c.createKnown(path, Kind.FILE, created, null, true, data)) {
        return null;
      }
      Resolved r = resolve(c, path, false);
      if (r.inode() != null) {
        throw new FsException(Errno.EEXIST, path);
      }
      return c.createEntry(r, Kind.FILE, created, null, path, data);
    });
  }

  /** A new file's group: its directory's if that is set-group-ID, else the caller's. */
  private static int newGid(Session s, Stat dir) {
    return (dir.mode() & S_ISGID) != 0 ? dir.gid() : s.gid();
  }

  /** Whether {@code path}'s bytes are within PATH_MAX and its name's within NAME_MAX (else open says why not). */
  private static boolean fits(String path) {
    try {
      return Names.bytes(path).length < PATH_MAX && Names.bytes(lastName(path)).length <= NAME_MAX;
    } catch (FsException e) {
      return false;
    }
  }

  /** A create answered before it is written: who asked, the path, the directories above it, what open returned. */
  private record Pending(Session s, String path, List<Stat> chain, Stat opened) {}

  /**
   * open(2) with O_CREAT of a name the caller has just seen absent — a front end's listing of a
   * directory it made itself a moment ago (tar, cp -r and git fill new directories so). When the
   * directories above are known (see {@link #chains}) and certainly let the caller create there, it
   * answers at once, without a call to the database: the file is written by the handle's first {@link
   * #writeBack} (with its content and attribute changes: one system call, {@code fs.create}), or by
   * the first other call of this file system that might see it, whichever comes first. Until then
   * other nodes do not see it, and if one of them takes the name meanwhile the handle's next call
   * fails with EIO. Otherwise it is {@link #open}.
   */
  public FileHandle openNew(Session s, String path, int flags, int mode) {
    List<Stat> chain = isPlain(path) ? chains.get(parentPath(path)) : null;
    if ((flags & O_CREAT) == 0 || chain == null || !fits(path) || (flags & O_ACCMODE) == O_RDONLY
        || !mayCreate(s, chain)) {
      return open(s, path, flags, mode);
    }
    int gid = newGid(s, chain.getLast());
    long id = nextHandle.getAndIncrement();
    long ino = inodeNumber();
    if (pendingPaths.putIfAbsent(path, id) != null) {
      return open(s, path, flags, mode); // writes the other one first
    }
    Instant now = Instant.now();
    var st = new Stat(ino, Kind.FILE, mode & 07777, s.uid(), gid, 0, 1, now, now, now, 1, chunkSize);
    var h = new FileHandle(id, st.ino(), flags & ~(O_TRUNC | O_EXCL), st.chunkSize(), st);
    pending.put(h.id(), new Pending(s, path, chain, st));
    handles.put(h.id(), h);
    openCounts.merge(st.ino(), 1, Integer::sum);
    return h;
  }

  /**
   * Whether {@code s} may search every directory of {@code chain} and write its last, as far as their
   * modes tell without the caller's supplementary groups (false when those could decide).
   */
  private static boolean mayCreate(Session s, List<Stat> chain) {
    if (isRoot(s)) {
      return chain.stream().allMatch(Stat::isDirectory);
    }
    for (int i = 0; i < chain.size(); i++) {
      Stat d = chain.get(i);
      int want = i == chain.size() - 1 ? W | X : X;
      int bits = d.uid() == s.uid() ? d.mode() >> 6 : d.gid() == s.gid() ? d.mode() >> 3 : d.mode() & (d.mode() >> 3);
      if (!d.isDirectory() || (bits & want) != want) {
        return false;
      }
    }
    return true;
  }

  /** The next inode number of this node's reserve, taking {@value #INODE_NUMBERS} more when it is empty. */
  private long inodeNumber() {
    synchronized (inodeNumbers) {
      if (inodeNumbers.isEmpty()) {
        inodeNumbers.addAll(kernel.database().transaction(c -> {
          try (var ps = c.prepareStatement("SELECT nextval('fs_inode_ids') FROM generate_series(1, ?)")) {
            ps.setInt(1, INODE_NUMBERS);
            var out = new ArrayList<Long>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.add(rs.getLong(1));
              }
            }
            return out;
          }
        }));
      }
      return inodeNumbers.removeFirst();
    }
  }

  /**
   * Writes the pending create of {@code h} with {@code data} (null: empty) and the attribute changes
   * {@code then}, as the system call {@code fs.create}; null if it is not pending (any more). It is not
   * pending afterwards, whatever happens: a failure is the handle's from now on, as EIO.
   */
  private Stat writePending(FileHandle h, byte[] data, List<SetAttr> then, boolean durable) {
    Pending p = pending.get(h.id());
    if (p == null) {
      return null;
    }
    synchronized (p) {
      return pending.get(h.id()) == p ? created(h, p, data, then, durable) : null;
    }
  }

  /** {@link #writePending} with p's lock held. */
  private Stat created(FileHandle h, Pending p, byte[] data, List<SetAttr> then, boolean durable) {
    try {
      Stat grouped = durable && then.isEmpty() ? grouped(p, data == null ? new byte[0] : data) : null;
      Stat st = grouped != null ? grouped : kernel.callChecked(p.s(), "fs.create", object(p.path()), false, tx -> {
        if (durable) {
          durable(tx);
        } else {
          deferDurability(tx);
        }
        var c = new Call(tx, p.s());
        // the bytes are written first (clearing set-user-ID as a write does), then the attribute changes
        Stat opened = data != null && data.length > 0 ? c.killed(p.opened()) : p.opened();
        c.given = c.applied(opened, then, p.path());
        if (c.root()) {
          // permissions do not stop root, so nothing needs the path walked again: the file goes into the
          // directory the open found, wherever it is now, as if created at the open (no walk)
          var r = new Resolved(p.chain().getLast(), Names.bytes(lastName(p.path())), null);
          return c.createEntry(r, Kind.FILE, c.given.mode(), null, p.path(), data);
        }
        if (c.createKnown(p.path(), Kind.FILE, c.given.mode(), null, true, data)) {
          return null;
        }
        Resolved r = resolve(c, p.path(), false);
        if (r.inode() != null) {
          throw new FsException(Errno.EEXIST, p.path());
        }
        return c.createEntry(r, Kind.FILE, c.given.mode(), null, p.path(), data);
      });
      known.put(h.id(), st);
      return st;
    } catch (SyscallException e) {
      var lost = new FsException(Errno.EIO, p.path() + " could not be created: " + e.getMessage());
      failed.put(h.id(), lost);
      throw lost;
    } finally {
      pending.remove(h.id(), p);
      pendingPaths.remove(p.path(), h.id());
    }
  }

  /**
   * A pending create written durably with nothing changed since its open, in a group ({@link
   * GroupCreate}) with other callers' creates: its attributes are those open answered (a non-root
   * caller's set-ID bits would need a write's check: not grouped); null if it must be written alone.
   */
  private Stat grouped(Pending p, byte[] data) {
    Stat o = p.opened();
    boolean root = isRoot(p.s());
    if (!root && (o.mode() & (S_ISUID | S_ISGID)) != 0) {
      return null;
    }
    return inGroup(p.s(), p.path(), p.chain(), !root, o.ino(), o.mode(), o.uid(), o.gid(), time(o.atime()),
        time(o.mtime()), data);
  }

  /**
   * {@code data} as a new file at {@code path}, in the last directory of {@code chain}, written in a
   * group with other callers' creates ({@link GroupCreate}): the path walked again against {@code
   * chain} unless {@code walk} is false; inode number {@code ino} (null: the next of the reserve); times
   * null for the commit's. Null if it cannot join a group (too large, or {@code chain} is not the path's
   * directories) or its group was refused: then the caller creates it alone.
   */
  private Stat inGroup(Session s, String path, List<Stat> chain, boolean walk, Long ino, int mode, int uid, int gid,
                       Long atime, Long mtime, byte[] data) {
    if (data.length > GroupCreate.MAX_BYTES) {
      return null;
    }
    List<byte[]> names = components(Names.bytes(path), path);
    if (names.size() != chain.size()) {
      return null;
    }
    Object made = groupCreate.create(new GroupCreate.NewFile(s, object(path), names, chain, walk,
        ino != null ? ino : inodeNumber(), mode, uid, gid, atime, mtime, data));
    return made instanceof Stat st ? st : null;
  }

  /** Writes the pending create of {@code h}, if any, durably; EIO if that, or an earlier attempt, failed. */
  private void settle(FileHandle h) {
    writePending(h, null, List.of(), true);
    FsException lost = failed.get(h.id());
    if (lost != null) {
      throw lost;
    }
  }

  /**
   * A system call by path: first writes every pending create (a path may name one, or a directory
   * holding one), so that what the call sees includes them. A create that fails is its handle's error.
   */
  private <T> T call(Session s, String call, String object, boolean readOnly, Kernel.Body<T> body) {
    settleAll();
    return kernel.callChecked(s, call, object, readOnly, body);
  }

  /** Writes every pending create (a create that fails is its handle's error). */
  private void settleAll() {
    if (!pending.isEmpty()) {
      for (Long id : pending.keySet()) {
        FileHandle h = handles.get(id);
        if (h != null) {
          try {
            settle(h);
          } catch (FsException e) {
            // EIO: the handle's owner hears of it
          }
        }
      }
    }
  }

  /** creat(2): open(path, O_CREAT|O_WRONLY|O_TRUNC, mode). */
  public FileHandle create(Session s, String path, int mode) {
    return open(s, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
  }

  /**
   * Reads up to {@code len} bytes at {@code offset}: fewer only at end of file; holes read as zeros.
   * EBADF if not open for reading or the inode is gone; EISDIR for a directory.
   */
  public byte[] read(Session s, FileHandle h, long offset, int len) {
    if (!h.readable()) {
      throw new FsException(Errno.EBADF, "not open for reading");
    }
    if (offset < 0 || len < 0) {
      throw new FsException(Errno.EINVAL, "negative offset or length");
    }
    settle(h);
    return kernel.callChecked(s, "fs.read", "file:#" + h.ino(), true, tx -> readAt(tx, h.ino(), h.chunkSize(), offset, len));
  }

  private static byte[] readAt(Tx tx, long ino, int cs, long offset, int len) throws SQLException {
    long end = offset + len;
    long k0 = offset / cs;
    long k1 = len == 0 ? k0 : (end - 1) / cs;
    try (PreparedStatement ps = tx.prepare(READ, offset, cs, cs, end, cs, offset, cs, k0, k1, ino);
         ResultSet rs = ps.executeQuery()) {
      byte[] out = null;
      while (rs.next()) {
        if (out == null) {
          long size = rs.getLong(1);
          out = new byte[(int) Math.max(0, Math.min(end, size) - offset)];
        }
        byte[] slice = rs.getBytes(3);
        if (slice != null) {
          long at = Math.max(offset, rs.getLong(2) * cs) - offset;
          System.arraycopy(slice, 0, out, (int) at, (int) Math.min(slice.length, out.length - at));
        }
      }
      if (out == null) {
        throw new FsException(Errno.EBADF, "no such file (inode " + ino + ")");
      }
      return out;
    }
  }

  /**
   * Writes {@code len} bytes of {@code data} from {@code from} at {@code offset} (at the end of file
   * for a handle opened with O_APPEND), extending the file and leaving holes as needed; durable on
   * return. Returns the offset written at. EBADF if not open for writing.
   */
  public long write(Session s, FileHandle h, long offset, byte[] data, int from, int len) {
    if (!h.writable()) {
      throw new FsException(Errno.EBADF, "not open for writing");
    }
    if (offset < 0) {
      throw new FsException(Errno.EINVAL, "negative offset");
    }
    if (!h.append()) {
      writeBack(s, h, offset, data, from, len, List.of(), true);
      return offset;
    }
    settle(h);
    return kernel.callChecked(s, "fs.write", "file:#" + h.ino(), false, tx -> {
      durable(tx);
      long at = tx.queryLong("SELECT size FROM fs_inodes WHERE ino = ? FOR UPDATE", h.ino());
      if (len > 0) {
        tx.lastAudited(STORE_CHUNKS_AUDITED, null, null,
            writeAt(tx, h.ino(), h.chunkSize(), at, data, from, len, killArgs(s)).store());
      }
      return at;
    });
  }

  /** A write made ready: the inode as it leaves it, and the arguments of {@link #STORE_CHUNKS} that finish it. */
  private record Write(Stat inode, Object[] store) {}

  /**
   * Locks, extends and versions the inode and builds the chunks a write touches; the caller sends
   * {@link #STORE_CHUNKS} with {@link Write#store} as the call's last statement.
   */
  private static Write writeAt(Tx tx, long ino, int cs, long offset, byte[] data, int from, int len, Object[] kill)
      throws SQLException {
    long end = offset + len;
    long k0 = offset / cs;
    long k1 = (end - 1) / cs;
    // Chunks only partly overwritten keep their other bytes (at most the first and the last). A chunk
    // holds no bytes past the size, so the last one matters only if the file extends past the write:
    // a new file's or an append's write fetches nothing.
    List<Long> partial = new ArrayList<>(2);
    if (offset % cs != 0) {
      partial.add(k0);
    }
    boolean lastPartial = end % cs != 0 && (k1 != k0 || partial.isEmpty());
    if (lastPartial) {
      partial.add(k1);
    }
    Map<Long, byte[]> old = new HashMap<>();
    Stat[] bumped = new Stat[1];
    queryPlanned(tx, BUMP, rs -> {
      bumped[0] = stat(rs, 1);
      long k = rs.getLong(13);
      if (!rs.wasNull()) {
        old.put(k, rs.getBytes(14));
      }
      return null;
    }, kill[0], kill[1], kill[2], end, ino, ino, tx.connection().createArrayOf("bigint", partial.toArray()),
        lastPartial ? k1 : -1, end);
    if (bumped[0] == null) {
      throw new FsException(Errno.EBADF, "no such file (inode " + ino + ")");
    }
    if (!bumped[0].isFile()) {
      throw new FsException(Errno.EISDIR, "inode " + ino);
    }
    return new Write(bumped[0], storeArgs(ino, cs, offset, data, from, len, old, bumped[0].version()));
  }

  /**
   * The arguments of {@link #STORE}: the chunks a write touches, built from {@code old}, the current
   * content of the ones it only partly overwrites, and hashed; {@code version} only if given.
   */
  private static Object[] storeArgs(long ino, int cs, long offset, byte[] data, int from, int len,
                                    Map<Long, byte[]> old, Long version) {
    Object[] chunks = chunkArrays(cs, offset, data, from, len, old);
    var args = new ArrayList<Object>(List.of(chunks[0], chunks[1]));
    if (version != null) {
      args.add(version);
    }
    args.addAll(List.of(ino, offset / cs, (offset + len - 1) / cs, ino));
    if (version != null) {
      args.add(version);
    }
    args.addAll(List.of(chunks[2], chunks[3], chunks[4]));
    return args.toArray();
  }

  /**
   * The chunks a write of {@code len} bytes at {@code offset} touches, built from {@code old} (the
   * current content of the ones it only partly overwrites) and hashed, as five arrays: the distinct
   * new blobs' hashes and contents, and each chunk's number, hash and length. None when len is 0.
   */
  private static Object[] chunkArrays(int cs, long offset, byte[] data, int from, int len, Map<Long, byte[]> old) {
    long end = offset + len;
    long k0 = offset / cs;
    int n = len == 0 ? 0 : (int) ((end - 1) / cs - k0 + 1);
    var blobs = new LinkedHashMap<ByteBuffer, byte[]>();
    var hashes = new byte[n][];
    var chunkNos = new Long[n];
    var lengths = new Integer[n];
    MessageDigest sha = sha256();
    for (int i = 0; i < n; i++) {
      long k = k0 + i;
      long start = k * cs;
      long wFrom = Math.max(offset, start);
      long wTo = Math.min(end, start + cs);
      byte[] base = old.get(k);
      byte[] content = new byte[(int) Math.max(base == null ? 0 : base.length, wTo - start)];
      if (base != null) {
        System.arraycopy(base, 0, content, 0, base.length);
      }
      System.arraycopy(data, from + (int) (wFrom - offset), content, (int) (wFrom - start), (int) (wTo - wFrom));
      hashes[i] = sha.digest(content);
      chunkNos[i] = k;
      lengths[i] = content.length;
      blobs.putIfAbsent(ByteBuffer.wrap(hashes[i]), content);
    }
    // plain Java arrays: the driver sends them in binary (a java.sql.Array of bytea goes as hex text,
    // twice the bytes, for both sides to encode and parse)
    return new Object[] {blobs.keySet().stream().map(ByteBuffer::array).toArray(byte[][]::new),
        blobs.values().toArray(new byte[0][]), chunkNos, hashes, lengths};
  }

  /**
   * A front end's buffered work on an open file as one call: writes {@code len} bytes of {@code data}
   * from {@code from} at {@code offset} (as {@link #write}; nothing when {@code len} is 0), then applies,
   * in order, the attribute changes made through the handle after those writes (fchmod, fchown,
   * futimens: so a futimens after the writes keeps its mtime). Durable on return only if
   * {@code durable}; otherwise it is ordered and atomic like a metadata change and made durable by the
   * next durable call ({@link #sync}). Returns the inode's attributes afterwards.
   */
  public Stat writeBack(Session s, FileHandle h, long offset, byte[] data, int from, int len, List<SetAttr> then,
                        boolean durable) {
    if (len > 0 && !h.writable()) {
      throw new FsException(Errno.EBADF, "not open for writing");
    }
    if (offset < 0) {
      throw new FsException(Errno.EINVAL, "negative offset");
    }
    if ((len == 0 || offset == 0 && !h.append()) && pending.containsKey(h.id())) {
      Stat st = writePending(h, len == 0 ? null : Arrays.copyOfRange(data, from, from + len), then, durable);
      if (st != null) {
        return st;
      }
    }
    settle(h);
    Stat after = kernel.callChecked(s, "fs.write", "file:#" + h.ino(), false, tx -> {
      if (durable) {
        durable(tx);
      } else {
        deferDurability(tx);
      }
      long at = offset;
      if (len > 0 && h.append()) {
        at = tx.queryLong("SELECT size FROM fs_inodes WHERE ino = ? FOR UPDATE", h.ino());
      }
      Stat k = len > 0 && !h.append() ? known.get(h.id()) : null;
      if (k != null && offset % h.chunkSize() == 0 && offset + len >= k.size()) {
        // the handle knows the inode: one statement, checked against its version
        var c = new Call(tx, s);
        Stat base = c.killed(k);
        Object[] attrs = !then.isEmpty() ? c.setattrArgs(base, then, false, "#" + h.ino())
            : base.mode() == k.mode() ? KEEP_ATTRS : keepAttrsBut(base.mode());
        var args = new ArrayList<Object>();
        args.add(offset + len);
        args.addAll(Arrays.asList(attrs).subList(0, KEEP_ATTRS.length));
        args.add(h.ino());
        args.add(k.version());
        args.addAll(Arrays.asList(storeArgs(h.ino(), h.chunkSize(), offset, data, from, len, Map.of(), null)));
        tx.lastAudited(WRITE_KNOWN, rs -> stat(rs, 1), e -> {
          known.remove(h.id()); // changed by someone else: the kernel runs the call again, the slow way
          contended.add(h.id());
          return null;
        }, args.toArray());
        return null;
      }
      if (len == 0) {
        Stat st = inode(tx, h.ino());
        return then.isEmpty() ? st : new Call(tx, s).setattr(st, then, true, "#" + h.ino());
      }
      Write w = writeAt(tx, h.ino(), h.chunkSize(), at, data, from, len, killArgs(s));
      if (then.isEmpty()) {
        tx.lastAudited(STORE_CHUNKS_AUDITED, null, null, w.store());
        return w.inode();
      }
      // after a write, the changes belong to the version it made: one history row, not two
      Object[] attrs = new Call(tx, s).setattrArgs(w.inode(), then, false, "#" + h.ino());
      Object[] args = Arrays.copyOf(w.store(), w.store().length + attrs.length);
      System.arraycopy(attrs, 0, args, w.store().length, attrs.length);
      tx.last(STORE_CHUNKS + ";\n" + SET_ATTR, rs -> stat(rs, 1), null, args);
      return null;
    });
    if (!contended.contains(h.id())) {
      known.put(h.id(), after);
    }
    if (!handles.containsKey(h.id())) {
      known.remove(h.id()); // closed meanwhile
      contended.remove(h.id());
    }
    return after;
  }

  /** truncate(2) by path: needs write permission. EISDIR for a directory, EINVAL for a negative size. */
  public void truncate(Session s, String path, long size) {
    if (size < 0) {
      throw new FsException(Errno.EINVAL, "negative size");
    }
    call(s, "fs.truncate", object(path), false, tx -> {
      deferDurability(tx);
      var c = new Call(tx, s);
      Stat f = existing(c, path, true).inode();
      if (f.isDirectory()) {
        throw new FsException(Errno.EISDIR, path);
      }
      if (f.isSpecial()) {
        throw new FsException(Errno.EINVAL, path);
      }
      c.require(f, W, path);
      truncate(tx, f.ino(), size, killArgs(s));
      return null;
    });
  }

  /** ftruncate(2): EBADF unless open for writing. */
  public void truncate(Session s, FileHandle h, long size) {
    if (!h.writable()) {
      throw new FsException(Errno.EBADF, "not open for writing");
    }
    if (size < 0) {
      throw new FsException(Errno.EINVAL, "negative size");
    }
    settle(h);
    kernel.callChecked(s, "fs.ftruncate", "file:#" + h.ino(), false, tx -> {
      deferDurability(tx);
      truncate(tx, h.ino(), size, killArgs(s));
      return null;
    });
    known.remove(h.id()); // the next write goes the general way instead of conflicting
  }

  /** Returns the inode as it leaves it (times as before); {@code kill}: {@link #killArgs}. */
  private static Stat truncate(Tx tx, long ino, long size, Object[] kill) throws SQLException {
    Stat f = tx.queryOne(LOCK_INO, rs -> stat(rs, 1), ino)
        .orElseThrow(() -> new FsException(Errno.ENOENT, "inode " + ino));
    Stat t = tx.queryOne(SET_SIZE, rs -> f.truncated(size, rs.getLong(1)).withMode(rs.getInt(2)),
        kill[0], kill[1], kill[2], size, ino).orElseThrow();
    long version = t.version();
    if (size >= f.size()) {
      return t; // growing leaves a hole: chunks never hold bytes past the size
    }
    int cs = f.chunkSize();
    long keep = (size + cs - 1) / cs; // chunks [0, keep) stay
    tx.update(CLOSE_CHUNKS, version, ino, keep, Long.MAX_VALUE);
    int tail = (int) (size % cs);
    if (tail != 0) {
      long k = size / cs;
      Array arr = tx.connection().createArrayOf("bigint", new Object[] {k});
      byte[] last = tx.queryOne(CHUNKS, rs -> rs.getBytes(2), ino, arr).orElse(null);
      if (last != null && last.length > tail) {
        byte[] cut = Arrays.copyOf(last, tail);
        byte[] hash = sha256().digest(cut);
        tx.update(NEW_BLOB, hash, cut);
        tx.update(CLOSE_CHUNKS, version, ino, k, k);
        tx.update(NEW_CHUNK, ino, k, version, hash, tail);
      }
    }
    return t;
  }

  /**
   * fsync: makes every earlier change durable, this file's and (like fsync of a directory) every
   * name change before it. Writes are durable on return already; metadata changes are not (see
   * {@link #deferDurability}). EBADF for a closed handle.
   */
  public void fsync(Session s, FileHandle h) {
    if (!handles.containsKey(h.id())) {
      throw new FsException(Errno.EBADF, "handle " + h.id() + " is closed");
    }
    sync(s);
  }

  /**
   * sync(2): returns once every change committed through this file system before it is durable. That
   * costs a WAL flush only if a change committed without one since the last durable call began: an
   * fsync right after a durable write is an audited call that waits for nothing.
   */
  public void sync(Session s) {
    boolean flushed = covered.get() >= deferred.get();
    kernel.callChecked(s, "fs.sync", "file:/", flushed, tx -> {
      if (!flushed) {
        durable(tx);
      }
      return null;
    });
  }

  /**
   * Metadata changes (create, mkdir, rename, unlink, link, chmod, chown, utimens, truncate) commit
   * without waiting for the WAL flush, as ext4 journals them: they are atomic and ordered (a crash
   * loses at most the last fraction of a second of them, never a part of one, and never one that a
   * later durable call depends on), and durable after the next {@link #write}, {@link #fsync} or
   * {@link #sync}. This halves the flushes of creating a small file and writing it.
   */
  private void deferDurability(Tx tx) {
    tx.commitWithoutFlush();
    tx.afterCommit(deferred::incrementAndGet);
  }

  /**
   * For a call that commits with the WAL flush: the flush covers every commit that returned before
   * this call sent its own (the WAL is ordered), so every deferred commit counted so far is durable.
   */
  private void durable(Tx tx) {
    long seen = deferred.get();
    tx.afterCommit(() -> covered.accumulateAndGet(seen, Math::max));
  }

  /**
   * Releases a handle. When it was the last one on an inode whose last name is gone, the inode and
   * its data go too. Closing twice is harmless.
   */
  public void close(FileHandle h) {
    if (!handles.containsKey(h.id())) {
      return;
    }
    try {
      settle(h);
    } catch (FsException e) {
      // EIO, reported by the handle's write-back (close(2) flushes first): nothing more to do here
    }
    failed.remove(h.id());
    if (handles.remove(h.id()) == null) {
      return;
    }
    known.remove(h.id());
    contended.remove(h.id());
    Integer left = openCounts.compute(h.ino(), (k, n) -> n == null || n <= 1 ? null : n - 1);
    if (left == null && orphans.remove(h.ino())) {
      kernel.callChecked(kernel.system(), "fs.release", "file:#" + h.ino(), false, tx -> {
        if (openCounts.containsKey(h.ino())) {
          return null; // reopened through /proc-like means meanwhile: keep it
        }
        tx.update("DELETE FROM fs_orphans WHERE ino = ?", h.ino());
        var st = tx.queryOne(LOCK_INO, rs -> stat(rs, 1), h.ino());
        if (st.isPresent() && st.get().nlink() == 0) {
          destroy(tx, h.ino());
        }
        return null;
      });
    }
  }

  /** Unlinked inodes whose holder is gone (a dead node, or this node before a restart) are freed. */
  private void reclaimOrphans() {
    Session sys = kernel.system();
    kernel.callChecked(sys, "fs.reclaim", "file:/", false, tx -> {
      for (long ino : tx.query(DEAD_ORPHANS, rs -> rs.getLong(1), kernel.nodeId().orElse(null))) {
        var st = tx.queryOne(LOCK_INO, rs -> stat(rs, 1), ino);
        if (st.isPresent() && st.get().nlink() == 0) {
          destroy(tx, ino);
        }
      }
      return null;
    });
  }

  private static void destroy(Tx tx, long ino) throws SQLException {
    var version = tx.queryOne(DROP_INODE, rs -> rs.getLong(1), ino);
    if (version.isPresent()) {
      tx.update(CLOSE_ALL_CHUNKS, version.get() + 1, ino);
    }
  }

  // ---- streams -------------------------------------------------------------------------------

  /** Reads a whole file as a stream, one chunk-sized call at a time (never the whole file in memory). */
  public InputStream openInput(Session s, String path) {
    FileHandle h = open(s, path, O_RDONLY, 0);
    return new InputStream() {
      private long pos;
      private byte[] buf = new byte[0];
      private int at;
      private boolean eof;

      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        if (at == buf.length) {
          if (eof) {
            return -1;
          }
          buf = FileSystem.this.read(s, h, pos, 4 * h.chunkSize());
          at = 0;
          pos += buf.length;
          eof = buf.length < 4 * h.chunkSize();
          if (buf.length == 0) {
            return -1;
          }
        }
        int n = Math.min(len, buf.length - at);
        System.arraycopy(buf, at, b, off, n);
        at += n;
        return n;
      }

      @Override
      public void close() {
        FileSystem.this.close(h);
      }
    };
  }

  /** Creates or truncates {@code path} and returns a stream writing it in calls of 4 chunks. */
  public OutputStream openOutput(Session s, String path, int mode) {
    FileHandle h = create(s, path, mode);
    int batch = 4 * h.chunkSize();
    return new OutputStream() {
      private final byte[] buf = new byte[batch];
      private int n;
      private long pos;

      @Override
      public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        while (len > 0) {
          int k = Math.min(len, batch - n);
          System.arraycopy(b, off, buf, n, k);
          n += k;
          off += k;
          len -= k;
          if (n == batch) {
            flush();
          }
        }
      }

      @Override
      public void flush() {
        if (n > 0) {
          FileSystem.this.write(s, h, pos, buf, 0, n);
          pos += n;
          n = 0;
        }
      }

      @Override
      public void close() {
        try {
          flush();
        } finally {
          FileSystem.this.close(h);
        }
      }
    };
  }

  // ---- maintenance ---------------------------------------------------------------------------

  /**
   * Verifies every inode, entry and chunk: link counts, reachability, entries under non-directories,
   * current chunks of missing inodes or past a file's size, chunks whose blob is missing, blob lengths
   * (and with {@code verifyData} every blob's SHA-256). Root only (EPERM).
   */
  public CheckReport check(Session s, boolean verifyData) {
    return call(s, "fs.check", "file:/", true, tx -> {
      if (!new Call(tx, s).root()) {
        throw new FsException(Errno.EPERM, "fs check is for root");
      }
      var problems = new ArrayList<String>();
      for (String[] q : FsCheck.QUERIES) {
        problems.addAll(tx.query(q[1] + " LIMIT 100", rs -> q[0].formatted(rs.getObject(1), rs.getObject(2), rs.getObject(3))));
      }
      if (verifyData) {
        problems.addAll(tx.query(FsCheck.BAD_HASH, rs -> "blob " + rs.getString(1) + ": content does not match its SHA-256"));
      }
      return new CheckReport(tx.queryLong("SELECT count(*) FROM fs_inodes"),
          tx.queryLong("SELECT count(*) FROM fs_dentries"),
          tx.queryLong("SELECT count(*) FROM fs_chunks WHERE to_version IS NULL"),
          tx.queryLong("SELECT count(*) FROM fs_blobs"),
          tx.queryLong(FsCheck.GARBAGE), problems);
    });
  }

  /**
   * Forgets what changed more than {@code keep} ago, oldest first, at most {@value #PURGE_BATCH} rows of
   * each kind (root only; EPERM otherwise): inode versions replaced before the horizon, names removed
   * or renamed before it, the chunk rows of file versions closed before it, and the blobs of those
   * chunk rows that no other chunk row uses. A version still current, or closed within {@code keep},
   * is never touched, so the file system can be read as of any moment inside the retention period.
   * While the blobs go, writers wait (a lock on fs_blobs): a writer that found a blob already stored
   * must not see it purged before its chunk row commits. Call again while {@link Purged#more}.
   */
  public Purged purge(Session s, Duration keep) {
    if (keep.isNegative()) {
      throw new FsException(Errno.EINVAL, "a retention period cannot be negative: " + keep);
    }
    String horizon = keep.toMillis() + " milliseconds";
    return call(s, "fs.purge", "file:/", false, tx -> {
      if (!new Call(tx, s).root()) {
        throw new FsException(Errno.EPERM, "fs purge is for root");
      }
      tx.queryOne("SELECT pg_advisory_xact_lock(?)", rs -> null, PURGE_LOCK);
      long versions = tx.update(PURGE_VERSIONS, horizon, PURGE_BATCH);
      long names = tx.update(PURGE_NAMES, horizon, PURGE_BATCH);
      tx.update("LOCK TABLE fs_blobs IN SHARE ROW EXCLUSIVE MODE");
      var candidates = new ArrayList<byte[]>();
      long chunks = tx.query(PURGE_CHUNKS, rs -> {
        candidates.add(rs.getBytes(1));
        return rs.getLong(2);
      }, horizon, PURGE_BATCH).stream().mapToLong(Long::longValue).sum();
      long blobs = candidates.isEmpty() ? 0
          : tx.update(PURGE_BLOBS, tx.connection().createArrayOf("bytea", candidates.toArray(new byte[0][])));
      return new Purged(versions, names, chunks, blobs,
          versions == PURGE_BATCH || names == PURGE_BATCH || chunks == PURGE_BATCH);
    });
  }

  /**
   * {@link #purge} until nothing older than {@code keep} is left: one system call per batch; {@code
   * progress} hears the running total after each.
   */
  public Purged purgeAll(Session s, Duration keep, java.util.function.Consumer<Purged> progress) {
    Purged total = purge(s, keep);
    progress.accept(total);
    while (total.more()) {
      total = total.plus(purge(s, keep));
      progress.accept(total);
    }
    return total;
  }

  // ---- path resolution -----------------------------------------------------------------------

  /** A resolved path: its parent directory (null for the root), last name, and inode (null if missing). */
  record Resolved(Stat parent, byte[] name, Stat inode) {}

  private Resolved existing(Call c, String path, boolean follow) throws SQLException {
    Resolved r = resolve(c, path, follow);
    if (r.inode() == null) {
      throw new FsException(Errno.ENOENT, path);
    }
    return r;
  }

  /**
   * Walks {@code path}: each run of plain names costs one query; symlinks (all but a last one unless
   * {@code follow}) restart the walk at their target, at most {@value #MAX_SYMLINKS} times.
   */
  private Resolved resolve(Call c, String path, boolean follow) throws SQLException {
    if (path == null || !path.startsWith("/")) {
      throw new FsException(Errno.EINVAL, "not an absolute path: " + path);
    }
    if (path.indexOf('\0') >= 0) {
      throw new FsException(Errno.EINVAL, "NUL in path");
    }
    byte[] raw = Names.bytes(path);
    if (raw.length >= PATH_MAX) {
      throw new FsException(Errno.ENAMETOOLONG, "path longer than " + PATH_MAX + " bytes");
    }
    boolean mustBeDir = path.length() > 1 && path.endsWith("/");
    follow |= mustBeDir;
    Deque<byte[]> todo = new ArrayDeque<>(components(raw, path));
    List<Stat> dirs = new ArrayList<>(); // inodes from the root to the current one
    List<byte[]> names = new ArrayList<>(); // names[i] leads from dirs[i-1] to dirs[i]
    long start = ROOT;
    int links = 0;
    boolean plain = true; // no symlink followed, no ".."
    outer:
    while (true) {
      List<byte[]> run = new ArrayList<>();
      for (byte[] n : todo) {
        if (isDotDot(n)) {
          break;
        }
        run.add(n);
      }
      List<Row> rows = queryPlanned(c.tx, WALK, rs -> new Row(stat(rs, 3), rs.getBytes(2)), start,
          c.tx.connection().createArrayOf("bytea", run.toArray(new byte[0][])));
      if (rows.isEmpty()) {
        throw new FsException(Errno.ENOENT, path);
      }
      if (dirs.isEmpty()) {
        dirs.add(rows.get(0).stat());
        names.add(null);
      } else {
        dirs.set(dirs.size() - 1, rows.get(0).stat());
      }
      for (int i = 1; i < rows.size(); i++) {
        Stat dir = rows.get(i - 1).stat();
        c.requireDir(dir, X, path);
        Row child = rows.get(i);
        todo.poll();
        boolean last = todo.isEmpty();
        if (child.stat().isSymlink() && (!last || follow)) {
          plain = false;
          if (++links > MAX_SYMLINKS) {
            throw new FsException(Errno.ELOOP, path);
          }
          byte[] target = child.target();
          List<byte[]> more = components(target, path);
          for (int k = more.size() - 1; k >= 0; k--) {
            todo.push(more.get(k));
          }
          if (target.length > 0 && target[0] == '/') {
            dirs.clear();
            names.clear();
            start = ROOT;
          } else {
            start = dir.ino();
          }
          continue outer;
        }
        dirs.add(child.stat());
        names.add(run.get(i - 1));
      }
      Stat cur = dirs.getLast();
      if (rows.size() - 1 < run.size()) { // run[rows.size()-1] is missing
        c.requireDir(cur, X, path);
        todo.poll();
        if (todo.isEmpty()) {
          if (plain) {
            c.chain = List.copyOf(dirs);
          }
          return new Resolved(cur, run.get(rows.size() - 1), null);
        }
        throw new FsException(Errno.ENOENT, path);
      }
      if (todo.isEmpty()) {
        break;
      }
      todo.poll(); // ".."
      plain = false;
      c.requireDir(cur, X, path);
      if (dirs.size() > 1) {
        dirs.removeLast();
        names.removeLast();
      }
      start = dirs.getLast().ino();
      if (todo.isEmpty()) {
        // re-read the directory we landed on
        List<Row> again = queryPlanned(c.tx, WALK, rs -> new Row(stat(rs, 3), rs.getBytes(2)), start,
            c.tx.connection().createArrayOf("bytea", new byte[0][]));
        dirs.set(dirs.size() - 1, again.getFirst().stat());
        break;
      }
    }
    Stat inode = dirs.getLast();
    if (mustBeDir && !inode.isDirectory()) {
      throw new FsException(Errno.ENOTDIR, path);
    }
    return dirs.size() == 1 ? new Resolved(null, null, inode)
        : new Resolved(dirs.get(dirs.size() - 2), names.getLast(), inode);
  }

  private record Row(Stat stat, byte[] target) {}

  private static List<byte[]> components(byte[] raw, String path) {
    var out = new ArrayList<byte[]>();
    int i = 0;
    while (i < raw.length) {
      int j = i;
      while (j < raw.length && raw[j] != '/') {
        j++;
      }
      int n = j - i;
      if (n > NAME_MAX) {
        throw new FsException(Errno.ENAMETOOLONG, "a name in " + path + " is longer than " + NAME_MAX + " bytes");
      }
      if (n > 0 && !(n == 1 && raw[i] == '.')) {
        out.add(Arrays.copyOfRange(raw, i, j));
      }
      i = j + 1;
    }
    return out;
  }

  /** Whether {@code path} is absolute and in normal form: no empty, "." or ".." names, no trailing '/'. */
  private static boolean isPlain(String path) {
    if (!path.startsWith("/") || path.length() == 1 || path.endsWith("/") || path.indexOf('\0') >= 0
        || path.contains("//") || path.contains("/./") || path.contains("/../") || path.endsWith("/.")
        || path.endsWith("/..")) {
      return false;
    }
    return true;
  }

  private static String parentPath(String path) {
    int i = path.lastIndexOf('/');
    return i <= 0 ? "/" : path.substring(0, i);
  }

  private void remember(String dir, List<Stat> chain) {
    if (chains.size() >= CHAINS_MAX) {
      chains.clear();
    }
    chains.put(dir, List.copyOf(chain));
  }

  private static boolean isDotDot(byte[] n) {
    return n.length == 2 && n[0] == '.' && n[1] == '.';
  }

  private static String lastName(String path) {
    String p = path;
    while (p.length() > 1 && p.endsWith("/")) {
      p = p.substring(0, p.length() - 1);
    }
    return p.substring(p.lastIndexOf('/') + 1);
  }

  // ---- one call's context: the caller, its groups, permission checks and entry changes ----

  private final class Call {
    final Tx tx;
    final Session s;
    private int[] groups;
    /** Set by a walk that found the path missing: the directories from the root to its parent. */
    List<Stat> chain;
    /** The inode number and attributes of a create {@link #openNew} answered before it was written. */
    Stat given;

    Call(Tx tx, Session s) {
      this.tx = tx;
      this.s = s;
    }

    boolean root() {
      return isRoot(s);
    }

    /** {@code st} as a write or truncate by this caller leaves its mode (as {@link #KILL_PRIVS}). */
    Stat killed(Stat st) throws SQLException {
      if (root() || (st.mode() & (S_ISUID | S_ISGID)) == 0) {
        return st;
      }
      boolean outsider = (st.mode() & (S_ISGID | 010)) == S_ISGID && !inGroup(st.gid());
      return st.withMode(withoutSetId(st.mode(), outsider));
    }

    boolean inGroup(int gid) throws SQLException {
      if (s.gid() == gid) {
        return true;
      }
      if (groups == null) {
        groups = tx.query(GROUPS, rs -> rs.getInt(1), s.principalId()).stream().mapToInt(Integer::intValue).toArray();
      }
      for (int g : groups) {
        if (g == gid) {
          return true;
        }
      }
      return false;
    }

    /** EACCES unless the caller holds all of {@code want} (R|W|X) on {@code st}. */
    void require(Stat st, int want, String path) throws SQLException {
      if (root()) {
        if ((want & X) != 0 && !st.isDirectory() && (st.mode() & 0111) == 0) {
          throw new FsException(Errno.EACCES, path);
        }
        return;
      }
      int bits;
      if (s.uid() == st.uid()) {
        bits = st.mode() >> 6;
      } else if (inGroup(st.gid())) {
        bits = st.mode() >> 3;
      } else {
        bits = st.mode();
      }
      if ((bits & want & 7) != want) {
        throw new FsException(Errno.EACCES, path);
      }
    }

    void requireDir(Stat dir, int want, String path) throws SQLException {
      if (!dir.isDirectory()) {
        throw new FsException(Errno.ENOTDIR, path);
      }
      require(dir, want, path);
    }

    void requireOwner(Stat st, String path) {
      if (!root() && st.uid() != s.uid()) {
        throw new FsException(Errno.EPERM, "not the owner of " + path);
      }
    }

    /** Removing an entry needs write+search on its directory and, if the directory is sticky, ownership. */
    void requireRemove(Resolved r, String path) throws SQLException {
      requireDir(r.parent(), W | X, path);
      if ((r.parent().mode() & S_ISVTX) != 0 && !root() && s.uid() != r.inode().uid() && s.uid() != r.parent().uid()) {
        throw new FsException(Errno.EPERM, "sticky directory: " + path);
      }
    }

    /**
     * Checks each change against chmod, chown or utimens rules as applied to {@code st} after the ones
     * before it, then applies them all with one statement (as a new version if {@code newVersion}).
     */
    Stat setattr(Stat st, List<SetAttr> changes, boolean newVersion, String path) throws SQLException {
      return tx.queryOne(SET_ATTR, rs -> stat(rs, 1), setattrArgs(st, changes, newVersion, path))
          .orElseThrow(() -> new FsException(Errno.ENOENT, path));
    }

    /** {@code st} with {@code changes} applied, checked as {@link #setattr} checks them; times set to NOW are null. */
    Stat applied(Stat st, List<SetAttr> changes, String path) throws SQLException {
      Object[] a = setattrArgs(st, changes, false, path);
      return new Stat(st.ino(), st.kind(), (int) a[0], (int) a[1], (int) a[2], st.size(), st.nlink(),
          a[5] == null ? null : Instant.ofEpochSecond(0, (Long) a[5]),
          a[8] == null ? null : Instant.ofEpochSecond(0, (Long) a[8]), null, st.version(), st.chunkSize());
    }

    /** The checks of {@link #setattr}; returns the arguments of {@link #SET_ATTR} that apply the changes. */
    Object[] setattrArgs(Stat st, List<SetAttr> changes, boolean newVersion, String path) throws SQLException {
      int mode = st.mode();
      int uid = st.uid();
      int gid = st.gid();
      Instant atime = null;
      Instant mtime = null;
      for (SetAttr a : changes) {
        Stat now = new Stat(st.ino(), st.kind(), mode, uid, gid, st.size(), st.nlink(), st.atime(), st.mtime(),
            st.ctime(), st.version(), st.chunkSize());
        if (a.isChmod()) {
          requireOwner(now, path);
          mode = a.mode();
          if (!root() && (mode & S_ISGID) != 0 && !now.isDirectory() && !inGroup(gid)) {
            mode &= ~S_ISGID;
          }
        } else if (a.isChown()) {
          if (!root() && (a.uid() != -1 && a.uid() != uid || uid != s.uid()
              || a.gid() != -1 && a.gid() != gid && !inGroup(a.gid()))) {
            throw new FsException(Errno.EPERM, "only root may give a file away; the owner may pick one of its groups: " + path);
          }
          mode = chownMode(now, a);
          uid = a.uid() == -1 ? uid : a.uid();
          gid = a.gid() == -1 ? gid : a.gid();
        } else {
          if (!root() && uid != s.uid()) {
            if (!((a.atime() == null || a.atime() == NOW) && (a.mtime() == null || a.mtime() == NOW))) {
              throw new FsException(Errno.EPERM, "only the owner may set times: " + path);
            }
            require(now, W, path);
          }
          atime = a.atime() != null ? a.atime() : atime;
          mtime = a.mtime() != null ? a.mtime() : mtime;
        }
      }
      return new Object[] {mode, uid, gid, atime == null, atime == NOW, time(atime), mtime == null, mtime == NOW,
          time(mtime), newVersion ? 1 : 0, st.ino()};
    }

    /**
     * Creates the entry {@code r} names with a new inode, as the call's last statement: the call returns
     * the new inode's attributes (this returns null; the body returns it). ENOENT if the directory was
     * removed meanwhile, EEXIST if the name was taken.
     */
    /**
     * Creates {@code path} with one statement ({@link #NEW_INODE_KNOWN}) if the way to its directory is
     * known and lets the caller through; false (nothing sent) if not.
     */
    boolean createKnown(String path, Kind kind, int mode, byte[] target, boolean excl) throws SQLException {
      return createKnown(path, kind, mode, target, excl, null);
    }

    /** {@link #createKnown} of a file holding {@code data} (null: none, the file is empty). */
    boolean createKnown(String path, Kind kind, int mode, byte[] target, boolean excl, byte[] data) throws SQLException {
      if (!isPlain(path)) {
        return false;
      }
      String dir = parentPath(path);
      List<Stat> known = chains.get(dir);
      if (known == null) {
        return false;
      }
      byte[] raw = Names.bytes(path);
      List<byte[]> names = raw.length < PATH_MAX ? components(raw, path) : List.of();
      if (known.size() != names.size()) {
        return false;
      }
      Stat parent = known.getLast();
      try {
        for (Stat d : known) {
          requireDir(d, X, path);
        }
        requireDir(parent, W | X, path);
      } catch (FsException e) {
        return false; // maybe by what the cache holds: the walk decides
      }
      var inos = new Long[known.size()];
      var versions = new Long[known.size()];
      for (int i = 0; i < inos.length; i++) {
        inos[i] = known.get(i).ino();
        versions[i] = known.get(i).version();
      }
      var c = tx.connection();
      var args = new ArrayList<Object>(List.of(
          c.createArrayOf("bytea", names.subList(0, names.size() - 1).toArray(new byte[0][])),
          c.createArrayOf("bigint", inos), c.createArrayOf("bigint", versions)));
      List<Object> create = newInodeArgs(parent, names.getLast(), kind, mode, target, data);
      create.add(2, inos.length); // after the directory's link change and inode: how many must match
      args.addAll(create);
      args.add(excl);
      tx.lastAudited(PLAN_ONCE + (data == null ? NEW_INODE_KNOWN : NEW_FILE_KNOWN), rs -> stat(rs, 1), e -> {
        FsException refused = fsError(e, path);
        if (refused == null) {
          chains.remove(dir, known); // changed: the kernel runs the call again, the slow way
        }
        return refused;
      }, args.toArray());
      return true;
    }

    Stat createEntry(Resolved r, Kind kind, int mode, byte[] target, String path) throws SQLException {
      return createEntry(r, kind, mode, target, path, null);
    }

    /** {@link #createEntry} of a file holding {@code data} (null: none). */
    Stat createEntry(Resolved r, Kind kind, int mode, byte[] target, String path, byte[] data) throws SQLException {
      Stat parent = r.parent();
      requireDir(parent, W | X, path);
      List<Stat> walked = chain;
      if (walked != null && isPlain(path)) {
        tx.afterCommit(() -> remember(parentPath(path), walked));
      }
      // a pending create sends no walk before it, which would have planned it once (PLAN_ONCE)
      tx.lastAudited((given != null ? PLAN_ONCE : "") + (data == null ? NEW_INODE : NEW_FILE), rs -> stat(rs, 1), e -> fsError(e, path),
          newInodeArgs(parent, r.name(), kind, mode, target, data).toArray());
      return null;
    }

    /**
     * The arguments of {@link #NEW_INODE_CTES}: the directory's link change and inode, the new inode, its
     * name, and (unless {@code data} is null) the {@link #NEW_DATA} holding {@code data}.
     */
    List<Object> newInodeArgs(Stat parent, byte[] name, Kind kind, int mode, byte[] target, byte[] data)
        throws SQLException {
      int gid = s.gid();
      if ((parent.mode() & S_ISGID) != 0) {
        gid = parent.gid();
        if (kind == Kind.DIRECTORY) {
          mode |= S_ISGID;
        }
      }
      int uid = s.uid();
      if (given != null) {
        uid = given.uid();
        gid = given.gid();
      }
      boolean dir = kind == Kind.DIRECTORY;
      long size = target != null ? target.length : data != null ? data.length : 0;
      var args = new ArrayList<Object>(Arrays.asList(dir ? 1 : 0, parent.ino(), given == null ? null : given.ino(),
          String.valueOf(kind.code), mode, uid, gid, dir ? 2 : 1, chunkSize, target, size,
          given == null ? null : time(given.atime()), given == null ? null : time(given.mtime()), name));
      if (data != null) {
        args.addAll(Arrays.asList(chunkArrays(chunkSize, 0, data, 0, data.length, Map.of())));
      }
      return args;
    }

    void removeDirectory(Resolved r, String path) throws SQLException {
      tx.queryOne(LOCK_INO, rs -> null, r.inode().ino());
      if (tx.queryOne(HAS_ENTRIES, rs -> rs.getBoolean(1), r.inode().ino()).orElse(false)) {
        throw new FsException(Errno.ENOTEMPTY, path);
      }
      touchDir(tx, r.parent().ino(), -1, path);
      if (tx.update(DROP_ENTRY, r.parent().ino(), r.name(), r.inode().ino()) == 0) {
        throw new FsException(Errno.ENOENT, path);
      }
      destroy(tx, r.inode().ino());
    }

    /** One name less: at zero the inode goes, unless a handle here keeps it open (then it is an orphan). */
    void dropLink(long ino) throws SQLException {
      int nlink = tx.queryOne(ADD_LINKS, rs -> rs.getInt(1), -1, ino).orElse(1);
      if (nlink > 0) {
        return;
      }
      if (openCounts.containsKey(ino)) {
        tx.update(NEW_ORPHAN, ino, kernel.nodeId().orElse(null));
        tx.afterCommit(() -> orphans.add(ino));
      } else {
        destroy(tx, ino);
      }
    }
  }

  /** The error fs_fail raised (V12__files_fail.sql), or null for any other. */
  private static FsException fsError(SQLException e, String path) {
    if (!FS_FAIL.equals(e.getSQLState()) || !(e instanceof PSQLException p) || p.getServerErrorMessage() == null) {
      return null;
    }
    return new FsException(Errno.valueOf(p.getServerErrorMessage().getMessage()), path);
  }

  /** {@code tx.query(sql, …)} behind {@link #PLAN_ONCE}, in one round trip. */
  private static <T> List<T> queryPlanned(Tx tx, String sql, Tx.Row<T> row, Object... args) throws SQLException {
    try (PreparedStatement ps = tx.prepare(PLAN_ONCE + sql, args)) {
      boolean rows = ps.execute();
      while (!rows && ps.getUpdateCount() != -1) {
        rows = ps.getMoreResults();
      }
      var out = new ArrayList<T>();
      try (ResultSet rs = ps.getResultSet()) {
        while (rs.next()) {
          out.add(row.map(rs));
        }
      }
      return out;
    }
  }

  private static void touchDir(Tx tx, long ino, int links, String path) throws SQLException {
    if (tx.update(TOUCH_DIR, links, ino) == 0) {
      throw new FsException(Errno.ENOENT, "directory of " + path + " was removed");
    }
  }

  private static Stat inode(Tx tx, long ino) throws SQLException {
    return tx.queryOne(STAT_INO, rs -> stat(rs, 1), ino)
        .orElseThrow(() -> new FsException(Errno.EBADF, "no such file (inode " + ino + ")"));
  }

  static Stat stat(ResultSet rs, int at) throws SQLException {
    return new Stat(rs.getLong(at), Kind.of(rs.getString(at + 1)), rs.getInt(at + 2), rs.getInt(at + 3),
        rs.getInt(at + 4), rs.getLong(at + 5), rs.getInt(at + 6), instant(rs, at + 7), instant(rs, at + 8),
        instant(rs, at + 9), rs.getLong(at + 10), rs.getInt(at + 11));
  }

  private static Instant instant(ResultSet rs, int at) throws SQLException {
    return Instant.ofEpochSecond(0, rs.getLong(at));
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String object(String path) {
    return "file:" + Names.shown(path); // text: a byte that is not UTF-8 would be '?'
  }
}
