package org.dbos.kernel.files;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLong;
import org.dbos.kernel.Ids;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.db.Database;
import org.dbos.kernel.security.AuditLog;

/**
 * {@link FileSystem#createFile} of small files in directories this node has walked, and the mount's
 * creates answered at open ({@link FileSystem#openNew}) that an fsync or close writes with nothing
 * else changed, by concurrent callers, written as one group ({@link CommitGroup}): one statement and
 * one durable COMMIT for all of them. Each create stays one system call, with its own audit record and session check; what the
 * group shares is the fixed price of a transaction (parse, executor start-up, the commit), which on
 * two cores was most of a small file's cost. The statement checks, for the whole group, what {@link
 * FileSystem}'s one-file create checks for one: that every directory on the paths is still the inode
 * and version this node last saw, and that no name exists. If anything refuses, nothing is written
 * and each caller runs its create alone, the ordinary way, which gives it its own answer.
 */
final class GroupCreate {
  /** Largest content a create may bring to a group: beyond it a group's statement grows for little gain. */
  static final int MAX_BYTES = 64 * 1024;
  /** Creates in one group at most. */
  static final int MAX_FILES = 64;
  /**
   * Groups written at once, and how many creates must wait before a second group is written beside
   * the first. FsProfile put 20000 (steady state), one runner against two: 8 writers 4,158 / 5,140
   * against 4,017 / 4,455 files/s, 32 writers 8,071 / 9,392 against 9,772 / 11,376. One group at a time
   * leaves a core idle while its backend works; two split 8 writers' groups in halves of ~3, so a
   * second group starts only while 8 creates wait.
   */
  static final int RUNNERS = 2;
  static final int SECOND_GROUP_AT = 8;
  /** What a request is answered with when its group failed: the caller runs its create alone. */
  static final Object ALONE = new Object();

  /**
   * The group's work after its audit rows (the check-and-append of every call, {@link
   * AuditLog#CHECKED_APPEND_ALL}, comes first): the steps of the walks (the root's row has no parent),
   * the directories stamped only if every step still holds, the inodes (only if every directory was
   * stamped), their entries, the blobs not yet stored and the chunk rows. A name that exists, or a
   * blob stored by another group meanwhile, fails the statement (a unique violation); else the final
   * row raises a serialization failure unless every inode was written. Either rolls the whole group
   * back. {@code %s} is {@link FileSystem#COLS}.
   *
   * <p>Every lookup is a scalar subquery keyed by the row's key, so that it can only be planned as a
   * key probe. The plan is generic and made once per connection, often while the tables are still
   * small: a join here was once planned as a scan of every inode (fine for ten rows, 30 ms per group
   * for 20,000), and ON CONFLICT costs a speculative insertion (a lock and a second WAL record per
   * row) where a probe first and the unique index as the backstop cost neither.
   */
  private static final String WRITE = FileSystem.PLAN_ONCE + """
      WITH audited AS (%s),
      seen AS (
        SELECT count(*) AS n FROM unnest(?::bigint[], ?::bytea[], ?::bigint[], ?::bigint[]) AS e(parent, name, ino, version)
        WHERE (SELECT x.version FROM fs_inodes x WHERE x.ino = e.ino AND x.kind = 'd') = e.version
          AND (e.parent IS NULL OR (SELECT d.ino FROM fs_dentries d WHERE d.parent = e.parent AND d.name = e.name) = e.ino)),
      dir AS (
        UPDATE fs_inodes SET mtime = fs_now(), ctime = fs_now()
        WHERE ino = ANY (?::bigint[]) AND kind = 'd' AND (SELECT n FROM seen) = ? RETURNING ino),
      i AS (
        INSERT INTO fs_inodes (ino, kind, mode, uid, gid, nlink, chunk_size, size, atime, mtime)
        SELECT f.ino, 'f', f.mode, f.uid, f.gid, 1, ?, f.size, coalesce(f.atime, fs_now()), coalesce(f.mtime, fs_now())
        FROM unnest(?::bigint[], ?::int[], ?::int[], ?::int[], ?::bigint[], ?::bigint[], ?::bigint[])
          AS f(ino, mode, uid, gid, size, atime, mtime)
        WHERE (SELECT count(*) FROM dir) = ?
        RETURNING *),
      entry AS (
        INSERT INTO fs_dentries (parent, name, ino) SELECT * FROM unnest(?::bigint[], ?::bytea[], ?::bigint[])),
      blobs AS (
        INSERT INTO fs_blobs (hash, data) SELECT * FROM unnest(?::bytea[], ?::bytea[]) AS b(hash, data)
        WHERE (SELECT true FROM fs_blobs x WHERE x.hash = b.hash) IS NULL),
      chunks AS (
        INSERT INTO fs_chunks (ino, chunk_no, from_version, hash, length)
        SELECT t.ino, t.k, 1, t.h, t.l FROM unnest(?::bigint[], ?::bigint[], ?::bytea[], ?::integer[]) AS t(ino, k, h, l))
      SELECT %s FROM (
        SELECT CASE WHEN (SELECT count(*) FROM i) = ? THEN true ELSE fs_conflict() IS NULL END AS ok) one
      JOIN i ON one.ok;
      COMMIT""".formatted(AuditLog.CHECKED_APPEND_ALL, FileSystem.COLS);

  /**
   * One create: who asks (and the audit record's object), the path's names and the directories above it as last walked (checked
   * unless {@code walk} is false: root's create answered at open goes into the directory it found,
   * wherever that is now), and the new inode: its number, mode, owner, times (null: the commit's) and
   * content.
   */
  static final class NewFile extends CommitGroup.Request {
    final Session s;
    final String object;
    final List<byte[]> names;
    final List<Stat> chain;
    final boolean walk;
    final long ino;
    final int mode;
    final int uid;
    final int gid;
    final Long atime;
    final Long mtime;
    final byte[] data;

    NewFile(Session s, String object, List<byte[]> names, List<Stat> chain, boolean walk, long ino,
            int mode, int uid, int gid, Long atime, Long mtime, byte[] data) {
      this.s = s;
      this.object = object;
      this.names = names;
      this.chain = chain;
      this.walk = walk;
      this.ino = ino;
      this.mode = mode;
      this.uid = uid;
      this.gid = gid;
      this.atime = atime;
      this.mtime = mtime;
      this.data = data;
    }
  }

  private final Kernel kernel;
  private final int chunkSize;
  private final AtomicLong deferred;
  private final AtomicLong covered;
  private final CommitGroup<NewFile> group;
  private final DistributionSummary groupSizes;
  private final Counter groupsFailed;

  /**
   * Creates files of {@code chunkSize}-byte chunks; each group's durable commit covers the changes
   * counted in {@code deferred} before it began, which it records in {@code covered} (as FileSystem's
   * durable calls do).
   */
  GroupCreate(Kernel kernel, int chunkSize, AtomicLong deferred, AtomicLong covered) {
    this.kernel = kernel;
    this.chunkSize = chunkSize;
    this.deferred = deferred;
    this.covered = covered;
    this.group = new CommitGroup<>(RUNNERS, MAX_FILES, SECOND_GROUP_AT, this::write);
    this.groupSizes = DistributionSummary.builder("dbos.fs.create.group")
        .description("Creates written together in one transaction").register(kernel.meters());
    this.groupsFailed = Counter.builder("dbos.fs.create.group.failed")
        .description("Groups of creates refused as a whole, whose creates then ran one by one").register(kernel.meters());
  }

  /** The new file's attributes, or {@link #ALONE} if the caller must create it the ordinary way. */
  Object create(NewFile f) {
    return group.submit(f);
  }

  private void write(List<NewFile> files) {
    var calls = new ArrayList<AuditLog.Call>(files.size());
    for (NewFile f : files) {
      calls.add(new AuditLog.Call(Ids.uuid7(), f.s, "fs.create", f.object, null));
    }
    long seen = deferred.get();
    Map<Long, Stat> made;
    try (Connection c = kernel.database().connection()) {
      c.setAutoCommit(false);
      try {
        made = writeAll(c, calls, files);
        c.commit(); // a no-op: the COMMIT went with the statement; keeps the driver's state exact
      } catch (SQLException | RuntimeException e) {
        Database.rollbackQuietly(c);
        throw e;
      } finally {
        Database.restoreAutoCommit(c);
      }
    } catch (SQLException e) {
      groupsFailed.increment();
      if (Database.isConnectionLoss(e) && AuditLog.committedAfterLoss(kernel.database(), calls.getFirst().id())) {
        var lost = new SyscallException(SyscallException.Code.UNAVAILABLE,
            "fs.create was applied, but its result was lost with the database connection");
        files.forEach(f -> f.fail(lost));
      } else {
        files.forEach(f -> f.answer(ALONE)); // refused, conflicting or unknown: each caller finds out alone
      }
      return;
    }
    covered.accumulateAndGet(seen, Math::max);
    groupSizes.record(files.size());
    kernel.countCalls("fs.create", "ok", files.size());
    for (NewFile f : files) {
      f.answer(Objects.requireNonNull(made.get(f.ino)));
    }
  }

  /** Sends the group's statement and COMMIT in one round trip; returns the new inodes by number. */
  private Map<Long, Stat> writeAll(Connection c, List<AuditLog.Call> calls, List<NewFile> files) throws SQLException {
    // every directory step of every path, once; and the directories the files go into, in lock order
    record Step(Long parent, ByteBuffer name, long ino, long version) {}
    Set<Step> steps = new LinkedHashSet<>();
    Set<Long> dirs = new TreeSet<>();
    int n = files.size();
    var inos = new Long[n];
    var modes = new Integer[n];
    var uids = new Integer[n];
    var gids = new Integer[n];
    var sizes = new Long[n];
    var atimes = new Long[n];
    var mtimes = new Long[n];
    var parents = new Long[n];
    var names = new byte[n][];
    var blobs = new LinkedHashMap<ByteBuffer, byte[]>();
    var chunkInos = new ArrayList<Long>();
    var chunkNos = new ArrayList<Long>();
    var hashes = new ArrayList<byte[]>();
    var lengths = new ArrayList<Integer>();
    MessageDigest sha = FileSystem.sha256();
    for (int i = 0; i < n; i++) {
      NewFile f = files.get(i);
      for (int k = 0; f.walk && k < f.chain.size(); k++) {
        Stat d = f.chain.get(k);
        steps.add(k == 0 ? new Step(null, null, d.ino(), d.version())
            : new Step(f.chain.get(k - 1).ino(), ByteBuffer.wrap(f.names.get(k - 1)), d.ino(), d.version()));
      }
      parents[i] = f.chain.getLast().ino();
      dirs.add(parents[i]);
      names[i] = f.names.getLast();
      inos[i] = f.ino;
      modes[i] = f.mode;
      uids[i] = f.uid;
      gids[i] = f.gid;
      sizes[i] = (long) f.data.length;
      atimes[i] = f.atime;
      mtimes[i] = f.mtime;
      for (int from = 0, k = 0; from < f.data.length; from += chunkSize, k++) {
        byte[] content = Arrays.copyOfRange(f.data, from, Math.min(f.data.length, from + chunkSize));
        byte[] hash = sha.digest(content);
        blobs.putIfAbsent(ByteBuffer.wrap(hash), content);
        chunkInos.add(f.ino);
        chunkNos.add((long) k);
        hashes.add(hash);
        lengths.add(content.length);
      }
    }
    var stepParents = new Long[steps.size()];
    var stepNames = new byte[steps.size()][];
    var stepInos = new Long[steps.size()];
    var stepVersions = new Long[steps.size()];
    int j = 0;
    for (Step s : steps) {
      stepParents[j] = s.parent();
      stepNames[j] = s.name() == null ? null : s.name().array();
      stepInos[j] = s.ino();
      stepVersions[j++] = s.version();
    }
    try (PreparedStatement ps = c.prepareStatement(WRITE)) {
      int at = AuditLog.bindCalls(c, ps, 1, calls);
      // plain Java arrays: the driver sends them in binary (a java.sql.Array goes as text)
      ps.setObject(at++, stepParents);
      ps.setObject(at++, stepNames);
      ps.setObject(at++, stepInos);
      ps.setObject(at++, stepVersions);
      ps.setObject(at++, dirs.toArray(new Long[0]));
      ps.setInt(at++, steps.size());
      ps.setInt(at++, chunkSize);
      ps.setObject(at++, inos);
      ps.setObject(at++, modes);
      ps.setObject(at++, uids);
      ps.setObject(at++, gids);
      ps.setObject(at++, sizes);
      ps.setObject(at++, atimes);
      ps.setObject(at++, mtimes);
      ps.setInt(at++, dirs.size());
      ps.setObject(at++, parents);
      ps.setObject(at++, names);
      ps.setObject(at++, inos);
      ps.setObject(at++, blobs.keySet().stream().map(ByteBuffer::array).toArray(byte[][]::new));
      ps.setObject(at++, blobs.values().toArray(new byte[0][]));
      ps.setObject(at++, chunkInos.toArray(new Long[0]));
      ps.setObject(at++, chunkNos.toArray(new Long[0]));
      ps.setObject(at++, hashes.toArray(new byte[0][]));
      ps.setObject(at++, lengths.toArray(new Integer[0]));
      ps.setInt(at, n);
      boolean rows = ps.execute();
      while (!rows && ps.getUpdateCount() != -1) { // past the SET LOCALs to the statement's rows
        rows = ps.getMoreResults();
      }
      var out = new HashMap<Long, Stat>();
      try (ResultSet rs = ps.getResultSet()) {
        while (rs.next()) {
          Stat st = FileSystem.stat(rs, 1);
          out.put(st.ino(), st);
        }
      }
      while (ps.getMoreResults() || ps.getUpdateCount() != -1) {
        // the COMMIT's reply: an error in it surfaces here
      }
      return out;
    }
  }
}
