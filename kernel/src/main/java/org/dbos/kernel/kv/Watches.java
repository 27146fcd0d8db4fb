package org.dbos.kernel.kv;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import org.dbos.kernel.Ids;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;
import org.dbos.kernel.Tx;
import org.dbos.kernel.db.Database;
import org.dbos.kernel.db.NotificationListener;
import org.dbos.kernel.kv.Kv.Event;
import org.dbos.kernel.kv.Kv.KeyValue;
import org.dbos.kernel.security.AuditLog;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches over the store's history, like etcd's watchable store: one hub per node reads each new
 * revision once from {@code kv_history} (in (mod_revision, seq) order, whole revisions at a time, in
 * one snapshot with the clock row, so nothing committed can be skipped) and hands the events to every
 * <em>synced</em> watcher. A watcher that starts in the past, or whose consumer cannot take events
 * (a slow gRPC stream), is <em>unsynced</em>: it keeps only its next revision and is caught up from
 * history a page at a time, so memory stays bounded however far behind it is.
 *
 * <p>The hub wakes on a commit on this node, on a NOTIFY from any node (the node's shared
 * {@link NotificationListener}) and on a slow poll, so a lost notification only delays events, never loses them.
 */
public final class Watches implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Watches.class);
  private static final int PAGE = 1000;
  private static final Duration POLL = Duration.ofSeconds(1);
  /** How often the hub re-checks its watchers' sessions and rights. */
  private static final Duration RECHECK = Duration.ofSeconds(1);

  /** Where a watcher's events go. Called only from the hub thread, never concurrently. */
  public interface Sink {
    /** Whether the consumer can take a message now; an unready sink is retried when it wakes the hub. */
    default boolean ready() {
      return true;
    }

    /** Events of whole revisions, in order; {@code revision} is what they bring the watcher up to. */
    void events(List<Event> events, long revision);

    /** The watch started, or fell, below the compacted revision: it is over. */
    void compacted(long compactRevision);

    /** The watch's session closed or its READ right on the range was revoked: it is over. */
    void denied();

    /** A periodic progress notification: every event up to {@code revision} has been delivered. */
    default void progress(long revision) {}
  }

  /** One watch: a key range, filters, and the next revision it needs. */
  public static final class Watcher {
    final long id;
    final byte[] key;
    final byte[] end;
    final boolean prevKv;
    final boolean noPut;
    final boolean noDelete;
    final boolean progressNotify;
    final Sink sink;
    final Session session;
    final String object;
    /** The store's revision when the watch was created: the header of etcd's "created" response. */
    long createdRevision;
    long nextRev;
    boolean synced;
    volatile boolean canceled;

    Watcher(long id, Session session, byte[] key, byte[] end, long nextRev, boolean prevKv, boolean noPut,
            boolean noDelete, boolean progressNotify, Sink sink) {
      this.id = id;
      this.session = session;
      this.object = KeyRanges.object(key, end);
      this.key = key;
      this.end = end;
      this.nextRev = nextRev;
      this.prevKv = prevKv;
      this.noPut = noPut;
      this.noDelete = noDelete;
      this.progressNotify = progressNotify;
      this.sink = sink;
    }

    public long id() {
      return id;
    }

    public long createdRevision() {
      return createdRevision;
    }

    boolean matches(Event e) {
      if (e.type() == Event.Type.PUT ? noPut : noDelete) {
        return false;
      }
      return e.kv().modRevision() >= nextRev && KeyRanges.contains(key, end, e.kv().key());
    }
  }

  private record Local(long from, long to, List<Event> events) {}

  private record ProgressRequest(List<Watcher> watchers, LongConsumer answer) {}

  private static final String CLOCK = "SELECT revision, compacted FROM kv_revision";
  /** A hub's row in kv_watch_hubs (V33), written while it has watchers: writers elsewhere then NOTIFY. */
  private static final String REGISTER = """
      WITH gone AS (DELETE FROM kv_watch_hubs WHERE seen_at < now() - interval '1 minute')
      INSERT INTO kv_watch_hubs (id) VALUES (?) ON CONFLICT (id) DO UPDATE SET seen_at = now()""";
  private static final String UNREGISTER = "DELETE FROM kv_watch_hubs WHERE id = ?";
  /**
   * A condition for a writer's statement: whether a hub other than {@code ?} (the writer's own) has
   * watchers, so its commit must NOTIFY (a row older than 10 s is a dead hub's).
   */
  static final String WATCHED_ELSEWHERE = """
      EXISTS (SELECT 1 FROM kv_watch_hubs WHERE id <> ?::uuid AND seen_at > now() - interval '10 seconds')""";
  private static final String EVENTS = """
      SELECT c.revision, c.compacted, h.key, h.mod_revision, h.create_revision, h.version, h.lease, h.value,
             p.create_revision, p.mod_revision, p.version, p.lease, p.value
      FROM kv_revision c
      LEFT JOIN LATERAL (SELECT * FROM kv_history WHERE %s AND mod_revision >= ? AND mod_revision <= %s
                         ORDER BY mod_revision, seq LIMIT ?) h ON true
      LEFT JOIN LATERAL (SELECT * FROM kv_history p WHERE %s AND p.key = h.key AND p.mod_revision < h.mod_revision
                         ORDER BY p.mod_revision DESC LIMIT 1) p ON true
      ORDER BY h.mod_revision, h.seq""";

  private final KvStore store;
  private final Database db;
  private final ConcurrentHashMap<Long, Watcher> watchers = new ConcurrentHashMap<>();
  private final ConcurrentLinkedQueue<Local> local = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<ProgressRequest> progressRequests = new ConcurrentLinkedQueue<>();
  private final AtomicLong ids = new AtomicLong();
  private final Semaphore signal = new Semaphore(0);
  private final Thread hub;
  private final NotificationListener notifications;
  private final java.util.function.Consumer<String> onNotify = this::notified;
  /** The newest revision known committed (local commits, NOTIFY payloads): lets an idle hub skip its read. */
  private final AtomicLong committed = new AtomicLong(-1);
  private volatile Duration progressInterval = Duration.ofMinutes(10);
  private volatile boolean closed;
  /** Every event up to this revision has been read and handed to the synced watchers. */
  private volatile long hubRevision = -1;
  private long lastProgress = System.nanoTime();
  private long lastRecheck = System.nanoTime();
  /** This hub's id in kv_watch_hubs. */
  private final java.util.UUID id = org.dbos.kernel.Ids.uuid7();
  /** Whether the hub has its row, and when it last wrote it. */
  private boolean registered;
  private long registeredAt;

  Watches(KvStore store, Database db) {
    this.store = store;
    this.db = db;
    this.hub = Thread.ofPlatform().name("dbos-kv-watch").daemon().start(this::hubLoop);
    // The node's one LISTEN connection, shared with the scheduler and mailboxes; closed with the kernel.
    this.notifications = NotificationListener.of(db);
    store.kernel().onClose(notifications);
    notifications.subscribe(KvStore.CHANNEL, onNotify);
    wake(); // anything committed before the LISTEN took effect is found by this read
  }

  /** Sets how often watchers that asked for progress notifications get one (etcd's default: 10 min). */
  public void progressInterval(Duration d) {
    progressInterval = d;
    wake();
  }

  /**
   * Watch starts a watch on [key, end) (etcd's range conventions) from {@code startRevision} (≤ 0: the
   * next revision; a past revision replays history first). Events come in revision order, each revision
   * whole, none lost, duplicated or reordered. Audited as {@code kv.watch}, READ on the range.
   */
  public Watcher watch(Session s, byte[] key, byte[] end, long startRevision, boolean prevKv, boolean noPut,
                       boolean noDelete, boolean progressNotify, Sink sink) {
    KvStore.requireKey(key);
    long current = store.kernel().call(s, "kv.watch", Right.READ, KeyRanges.object(key, end),
        tx -> tx.queryOne(CLOCK, rs -> rs.getLong(1)).orElseThrow());
    var w = new Watcher(ids.incrementAndGet(), s, key, end, startRevision > 0 ? startRevision : current + 1,
        prevKv, noPut, noDelete, progressNotify, sink);
    w.createdRevision = current;
    watchers.put(w.id, w);
    wake();
    return w;
  }

  /** Stops a watch; no event is delivered to it after this returns on the hub's next step. */
  public void cancel(Watcher w) {
    w.canceled = true;
    watchers.remove(w.id);
  }

  /**
   * Answers a progress request: once every watcher in {@code ws} is synced, calls {@code answer} (on
   * the hub thread, after all their events up to it) with a revision they have all been sent up to.
   */
  public void requestProgress(Collection<Watcher> ws, LongConsumer answer) {
    progressRequests.add(new ProgressRequest(List.copyOf(ws), answer));
    wake();
  }

  /**
   * This node's writer committed exactly {@code events} at revisions {@code from}..{@code to} (Puts,
   * with their previous values): handed to the hub so that it need not read them back.
   */
  void committed(long from, long to, List<Event> events) {
    if (!watchers.isEmpty()) {
      local.add(new Local(from, to, events));
    }
    committed(to);
  }

  /**
   * This node's writer committed {@code revision}: the hub delivers it now. With no watchers and no
   * progress request the hub has nothing to do, and is not woken: it takes the revision when it next
   * steps.
   */
  void committed(long revision) {
    committed.accumulateAndGet(revision, Math::max);
    if (!watchers.isEmpty() || !progressRequests.isEmpty()) {
      wake();
    }
  }

  /** This hub's id, which a writer's {@link #WATCHED_ELSEWHERE} excludes. */
  java.util.UUID id() {
    return id;
  }

  private void notified(String payload) {
    try {
      committed.accumulateAndGet(Long.parseLong(payload), Math::max);
    } catch (NumberFormatException e) {
      log.debug("unexpected {} payload {}", KvStore.CHANNEL, payload);
    }
    wake();
  }

  /** Asks the hub to look for new revisions now. */
  public void wake() {
    signal.release();
  }

  // ---- the hub ----------------------------------------------------------------------------------

  private void hubLoop() {
    while (!closed) {
      try {
        signal.tryAcquire(POLL.toMillis(), TimeUnit.MILLISECONDS);
        signal.drainPermits();
        if (closed) {
          return;
        }
        step();
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException | SQLException e) {
        if (!closed) {
          log.warn("watch hub: {}", e.getMessage());
          try {
            Thread.sleep(100);
          } catch (InterruptedException ie) {
            return;
          }
        }
      }
    }
  }

  private void step() throws SQLException {
    if (hubRevision >= 0 && watchers.isEmpty() && progressRequests.isEmpty() && !registered) {
      hubRevision = Math.max(hubRevision, committed.get());
      return;
    }
    try (Connection c = db.connection()) {
      if (hubRevision < 0) {
        try (var rs = c.createStatement().executeQuery(CLOCK)) {
          rs.next();
          hubRevision = rs.getLong(1);
        }
      }
      boolean more = true;
      while (more && !closed) {
        more = advance(c);
      }
      for (Watcher w : watchers.values()) {
        if (!w.synced && !w.canceled) {
          catchUp(c, w);
        }
      }
      // after the delivery this step was woken for, so that neither the hub row's refresh (a durable
      // write, once a second) nor the re-check delays an event
      register(c);
      if (System.nanoTime() - lastRecheck >= RECHECK.toNanos()) {
        lastRecheck = System.nanoTime();
        recheck(c);
      }
    }
    answerProgress();
  }

  /** Keeps this hub's row in kv_watch_hubs while it has watchers (refreshed each second), and only then. */
  private void register(Connection c) throws SQLException {
    boolean want = !watchers.isEmpty();
    if (want ? registered && System.nanoTime() - registeredAt < RECHECK.toNanos() : !registered) {
      return;
    }
    try (PreparedStatement ps = c.prepareStatement(want ? REGISTER : UNREGISTER)) {
      ps.setObject(1, id);
      ps.executeUpdate();
    }
    registered = want;
    registeredAt = System.nanoTime();
  }

  /**
   * Re-checks every watcher's session and READ right with the kernel's rule, in one query, and
   * cancels (and audits as denied) the watchers that lost them: etcd cancels watches when auth changes.
   */
  private void recheck(Connection c) throws SQLException {
    List<Watcher> ws = List.copyOf(watchers.values());
    if (ws.isEmpty()) {
      return;
    }
    var calls = ws.stream().map(w -> new AuditLog.Call(Ids.uuid7(), w.session, "kv.watch", w.object, Right.READ)).toList();
    AuditLog.Verdict[] verdicts = AuditLog.checkAll(c, calls);
    for (int i = 0; i < ws.size(); i++) {
      Watcher w = ws.get(i);
      if (verdicts[i] != AuditLog.Verdict.ALLOWED && !w.canceled) {
        cancel(w);
        AuditLog.append(c, calls.get(i).id(), w.session, "kv.watch", w.object, "denied",
            verdicts[i] == AuditLog.Verdict.INVALID_SESSION ? "session closed: watch canceled"
                : "missing right READ: watch canceled");
        w.sink.denied();
      }
    }
  }

  /** Reads the next page of revisions past the hub's and gives it to the synced watchers. */
  private boolean advance(Connection c) throws SQLException {
    if (watchers.isEmpty()) {
      // nothing to deliver: move to the newest committed revision heard of, without reading (a lag is
      // harmless: a new watcher starts at the clock it read and catches up to the hub from history)
      if (progressRequests.isEmpty()) {
        hubRevision = Math.max(hubRevision, committed.get());
        return false;
      }
      try (var rs = c.createStatement().executeQuery(CLOCK)) {
        rs.next();
        hubRevision = rs.getLong(1);
      }
      return false;
    }
    Page page = local();
    if (page == null) {
      boolean prev = watchers.values().stream().anyMatch(w -> w.prevKv && w.synced);
      page = read(c, "true", List.of(), hubRevision + 1, Long.MAX_VALUE, prev);
    }
    if (page.compacted > hubRevision + 1) {
      for (Watcher w : watchers.values()) {
        if (w.synced && w.nextRev < page.compacted) {
          w.synced = false; // its catch-up sees the compaction and cancels it
        }
      }
    }
    for (Watcher w : watchers.values()) {
      if (!w.synced || w.canceled) {
        continue;
      }
      var mine = new ArrayList<Event>();
      for (Event e : page.events) {
        if (w.matches(e)) {
          mine.add(w.prevKv || e.prevKv() == null ? e : new Event(e.type(), e.kv(), null));
        }
      }
      if (!mine.isEmpty()) {
        if (!w.sink.ready()) {
          w.synced = false;
          continue;
        }
        w.sink.events(mine, page.upTo);
      }
      w.nextRev = Math.max(w.nextRev, page.upTo + 1);
    }
    boolean moved = page.upTo > hubRevision;
    hubRevision = page.upTo;
    return moved && (page.truncated || !local.isEmpty());
  }

  /**
   * The next revisions as this node's writer committed them, if they follow the hub's revision
   * directly (no other node wrote in between): then the hub need not read them back. Else null, and
   * the hub reads from history.
   */
  private Page local() {
    for (Local l; (l = local.poll()) != null; ) {
      if (l.to <= hubRevision) {
        continue;
      }
      if (l.from == hubRevision + 1) {
        return new Page(l.events, l.to, 0, false);
      }
      local.clear();
    }
    return null;
  }

  /** Brings one unsynced watcher forward by a page; it joins the synced ones once it reaches the hub. */
  private void catchUp(Connection c, Watcher w) throws SQLException {
    if (w.nextRev > hubRevision) {
      w.synced = true;
      return;
    }
    if (!w.sink.ready()) {
      return;
    }
    var args = new ArrayList<Object>();
    String cond = KeyRanges.condition(w.key, w.end, args);
    Page page = read(c, cond, args, w.nextRev, hubRevision, w.prevKv);
    if (w.nextRev < page.compacted) {
      cancel(w);
      w.sink.compacted(page.compacted);
      return;
    }
    var mine = new ArrayList<Event>();
    for (Event e : page.events) {
      if (w.matches(e)) {
        mine.add(e);
      }
    }
    if (!mine.isEmpty()) {
      w.sink.events(mine, page.upTo);
    }
    w.nextRev = page.upTo + 1;
    if (!page.truncated) {
      w.synced = true;
    }
  }

  private void answerProgress() {
    for (var it = progressRequests.iterator(); it.hasNext(); ) {
      ProgressRequest p = it.next();
      if (p.watchers.stream().allMatch(w -> w.synced || w.canceled)) {
        it.remove();
        p.answer.accept(hubRevision);
      }
    }
    Duration every = progressInterval;
    if (System.nanoTime() - lastProgress >= every.toNanos()) {
      lastProgress = System.nanoTime();
      for (Watcher w : watchers.values()) {
        if (w.progressNotify && w.synced && !w.canceled && w.sink.ready()) {
          w.sink.progress(hubRevision);
        }
      }
    }
  }

  /** Events read from history: whole revisions only, up to {@code upTo}. */
  private record Page(List<Event> events, long upTo, long compacted, boolean truncated) {}

  /**
   * Reads events with from ≤ mod_revision ≤ min(to, current) in the range {@code cond}. A full page
   * drops its last, possibly partial revision (unless it is the only one: then it is read whole).
   */
  private Page read(Connection c, String cond, List<Object> condArgs, long from, long to, boolean prev)
      throws SQLException {
    Page p = query(c, cond, condArgs, from, to, prev, PAGE);
    if (p.events.size() < PAGE) {
      return p;
    }
    long first = p.events.getFirst().kv().modRevision();
    long last = p.events.getLast().kv().modRevision();
    if (first == last) {
      Page whole = query(c, cond, condArgs, first, first, prev, Integer.MAX_VALUE);
      return new Page(whole.events, first, whole.compacted, true);
    }
    var kept = new ArrayList<Event>();
    for (Event e : p.events) {
      if (e.kv().modRevision() < last) {
        kept.add(e);
      }
    }
    return new Page(kept, last - 1, p.compacted, true);
  }

  private Page query(Connection c, String cond, List<Object> condArgs, long from, long to, boolean prev, int limit)
      throws SQLException {
    String upper = to == Long.MAX_VALUE ? "c.revision" : "LEAST(c.revision, ?)";
    String sql = EVENTS.formatted(cond, upper, prev ? "true" : "false");
    var args = new ArrayList<Object>(condArgs);
    args.add(from);
    if (to != Long.MAX_VALUE) {
      args.add(to);
    }
    args.add(limit);
    var events = new ArrayList<Event>();
    long current = 0;
    long compacted = 0;
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      Tx.bind(ps, args.toArray());
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          current = rs.getLong(1);
          compacted = rs.getLong(2);
          byte[] key = rs.getBytes(3);
          if (key == null) {
            continue;
          }
          long mod = rs.getLong(4);
          long version = rs.getLong(6);
          KeyValue prevKv = null;
          if (rs.getBytes(13) != null && rs.getLong(11) > 0) {
            prevKv = new KeyValue(key, rs.getLong(9), rs.getLong(10), rs.getLong(11), rs.getLong(12), rs.getBytes(13));
          }
          if (version == 0) {
            events.add(new Event(Event.Type.DELETE, new KeyValue(key, 0, mod, 0, 0, new byte[0]), prevKv));
          } else {
            events.add(new Event(Event.Type.PUT,
                new KeyValue(key, rs.getLong(5), mod, version, rs.getLong(7), rs.getBytes(8)), prevKv));
          }
        }
      }
    }
    long upTo = Math.min(current, to);
    return new Page(events, Math.max(upTo, from - 1), compacted, false);
  }

  @Override
  public void close() {
    closed = true;
    wake();
    hub.interrupt();
    notifications.unsubscribe(KvStore.CHANNEL, onNotify);
    try {
      hub.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (registered) {
      try (Connection c = db.connection(); PreparedStatement ps = c.prepareStatement(UNREGISTER)) {
        ps.setObject(1, id);
        ps.executeUpdate();
      } catch (SQLException | RuntimeException e) {
        log.debug("could not drop the watch hub's row (ignored after 10 s): {}", e.getMessage());
      }
    }
  }
}
