package org.dbos.kernel.messages;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.Tx;
import org.dbos.kernel.db.NotificationListener;

/**
 * Inter-process messages as rows. A mailbox belongs to a principal (or a task); {@code send} inserts a
 * row, {@code recv} deletes the oldest rows in the receiver's transaction, so each message is
 * delivered exactly once: a receiver that crashes before its commit leaves the message in place, one
 * that committed has it. Topics copy each published message into every subscribed mailbox.
 *
 * <p>Ordering: a mailbox yields messages in id order, so sequential sends of one sender are received
 * in send order. Concurrent receivers on one mailbox take disjoint messages (SKIP LOCKED).
 *
 * <p>Rights, checked in each call's transaction and audited: the owner of a mailbox, admins, and
 * principals granted WRITE on {@code mailbox:<name>} may send; the owner, admins and holders of READ
 * may receive. Topics likewise with {@code topic:<name>} (WRITE to publish, READ to subscribe).
 */
public final class Mailboxes {
  public static final String CHANNEL = "dbos_mail";
  private static final String NAME = "[A-Za-z0-9_][A-Za-z0-9_./@-]{0,127}";

  /**
   * Whether principal ? (admin ?) may use right ? on object ? of the mailbox or topic owned by owner_id,
   * in session ?: the owner may, else the kernel's rule (the session's grants, see AuditLog).
   * Parameters: principal id, admin, session id, right, object.
   */
  private static final String MAY = """
      (owner_id = ? OR ? OR EXISTS (SELECT 1 FROM sessions s WHERE s.id = ?::uuid
                                      AND (?::text || ' ' || ?::text) LIKE ANY (s.right_patterns)))""";
  private static final String ACCESS = "SELECT " + MAY + " FROM mailboxes WHERE name = ?";
  private static final String TOPIC_ACCESS = "SELECT " + MAY + " FROM topics WHERE name = ?";
  /**
   * The insert, its rights check and, if the last parameter is true, the wake-up ({@value #CHANNEL})
   * in one statement: the hot path of a send.
   */
  private static final String SEND = "WITH m AS (INSERT INTO messages (mailbox, sender_id, body)"
      + " SELECT name, ?, ? FROM mailboxes WHERE name = ? AND " + MAY + " RETURNING id, mailbox)"
      + " SELECT id, CASE WHEN ?::boolean THEN pg_notify('dbos_mail', mailbox) END FROM m";
  private static final String CLAIM_KEY = """
      INSERT INTO message_keys (mailbox, key, message_id) VALUES (?, ?, -1) ON CONFLICT DO NOTHING""";
  private static final String KEYED = "SELECT message_id FROM message_keys WHERE mailbox = ? AND key = ?";
  private static final String SET_KEY = "UPDATE message_keys SET message_id = ? WHERE mailbox = ? AND key = ?";
  /** {@link #SEND} without the wake-up for many bodies (a bytea array, sent in binary), inserted in array order. */
  private static final String SEND_MANY = "INSERT INTO messages (mailbox, sender_id, body)"
      + " SELECT x.name, ?, u.b FROM (SELECT name FROM mailboxes WHERE name = ? AND " + MAY + ") x"
      + " CROSS JOIN unnest(?::bytea[]) WITH ORDINALITY AS u(b, n) ORDER BY u.n RETURNING id";
  /**
   * The rights check and the delete in one statement. No row: no such mailbox; a row with ok false:
   * denied; ok true and a null id: empty; else one row per message taken. When the last parameter is
   * true, an empty receive also turns off the WAL flush wait of its transaction (see {@link #recv(Session,
   * String, int, Duration)}), in the same round trip.
   */
  private static final String RECV = """
      WITH a AS (SELECT """ + MAY + """
       AS ok FROM mailboxes WHERE name = ?),
      d AS (DELETE FROM messages WHERE (SELECT ok FROM a) AND id IN (
              SELECT id FROM messages WHERE mailbox = ? ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)
            RETURNING id, mailbox, sender_id, topic, body, sent_at)
      SELECT a.ok, d.id, d.mailbox, p.name, d.topic, d.body, d.sent_at,
             CASE WHEN d.id IS NULL AND ?::boolean THEN set_config('synchronous_commit', 'off', true) END
      FROM a LEFT JOIN d ON true LEFT JOIN principals p ON p.id = d.sender_id ORDER BY d.id""";
  private static final String PUBLISH = """
      INSERT INTO messages (mailbox, sender_id, topic, body) SELECT s.mailbox, ?, s.topic, ? FROM subscriptions s
      WHERE s.topic = ? ORDER BY s.mailbox RETURNING mailbox""";

  private final Kernel kernel;
  private final ConcurrentHashMap<String, CompletableFuture<Void>> waiters = new ConcurrentHashMap<>();
  private volatile boolean listening;

  public Mailboxes(Kernel kernel) {
    this.kernel = kernel;
  }

  // ---- mailboxes and topics -------------------------------------------------------------------

  /**
   * Creates a mailbox owned by the caller, or by task {@code taskId} (deleted with it) if not null.
   * ALREADY_EXISTS if the name is taken; INVALID_ARGUMENT for a bad name.
   */
  public void create(Session s, String name, Long taskId) {
    checkName("mailbox", name);
    kernel.callChecked(s, "mailbox.create", "mailbox:" + name, false, tx ->
        tx.update("INSERT INTO mailboxes (name, owner_id, task_id) VALUES (?, ?, ?)", name, s.principalId(), taskId));
  }

  /** Deletes a mailbox and its undelivered messages (owner or admin); NOT_FOUND if there is none. */
  public void delete(Session s, String name) {
    kernel.callChecked(s, "mailbox.delete", "mailbox:" + name, false, tx -> {
      access(tx, ACCESS, name, "ADMIN", "mailbox");
      return tx.update("DELETE FROM mailboxes WHERE name = ?", name);
    });
  }

  /** Mailbox names the caller owns (all for an admin), with their undelivered message counts. */
  public List<String[]> list(Session s) {
    return kernel.callChecked(s, "mailbox.list", "mailbox:", true, tx -> tx.query("""
        SELECT m.name, p.name, (SELECT count(*) FROM messages x WHERE x.mailbox = m.name)
        FROM mailboxes m JOIN principals p ON p.id = m.owner_id WHERE ? OR m.owner_id = ? ORDER BY m.name""",
        rs -> new String[] {rs.getString(1), rs.getString(2), rs.getString(3)}, s.admin(), s.principalId()));
  }

  public void createTopic(Session s, String name) {
    checkName("topic", name);
    kernel.callChecked(s, "topic.create", "topic:" + name, false, tx ->
        tx.update("INSERT INTO topics (name, owner_id) VALUES (?, ?)", name, s.principalId()));
  }

  /** Subscribes a mailbox the caller may receive from to a topic it may read. Idempotent. */
  public void subscribe(Session s, String topic, String mailbox) {
    kernel.callChecked(s, "topic.subscribe", "topic:" + topic, false, tx -> {
      access(tx, TOPIC_ACCESS, topic, "READ", "topic");
      access(tx, ACCESS, mailbox, "READ", "mailbox");
      return tx.update("INSERT INTO subscriptions (topic, mailbox) VALUES (?, ?) ON CONFLICT DO NOTHING", topic, mailbox);
    });
  }

  public void unsubscribe(Session s, String topic, String mailbox) {
    kernel.callChecked(s, "topic.unsubscribe", "topic:" + topic, false, tx -> {
      access(tx, ACCESS, mailbox, "READ", "mailbox");
      return tx.update("DELETE FROM subscriptions WHERE topic = ? AND mailbox = ?", topic, mailbox);
    });
  }

  private static void checkName(String what, String name) {
    if (name == null || !name.matches(NAME)) {
      throw SyscallException.invalid("invalid " + what + " name '" + name + "': letters, digits and _ . / @ - (at most 128)");
    }
  }

  /** Fails with NOT_FOUND or PERMISSION_DENIED unless the caller holds {@code right} on the mailbox or topic. */
  private static void access(Tx tx, String sql, String name, String right, String kind) throws SQLException {
    Session s = tx.session();
    Optional<Boolean> ok = tx.queryOne(sql, rs -> rs.getBoolean(1), s.principalId(), s.admin(), s.id(), right,
        kind + ":" + name, name);
    if (ok.isEmpty()) {
      throw SyscallException.notFound("no " + kind + " named '" + name + "'");
    }
    if (!ok.get()) {
      throw SyscallException.denied("'" + s.principal() + "' lacks " + right + " on " + kind + ":" + name);
    }
  }

  // ---- send -----------------------------------------------------------------------------------

  /**
   * Sends {@code body} to {@code mailbox} and returns the message id. With an idempotency key, a send
   * repeated with the same key (before or after delivery) is a no-op returning the first message's id.
   * NOT_FOUND for an unknown mailbox, PERMISSION_DENIED without WRITE.
   */
  public long send(Session s, String mailbox, byte[] body, String idempotencyKey) {
    return kernel.callChecked(s, "mailbox.send", "mailbox:" + mailbox, false, tx -> {
      long id = send(tx, mailbox, body, idempotencyKey, false);
      tx.notifyAfterCommit(CHANNEL, mailbox);
      return id;
    });
  }

  /**
   * Sends inside the caller's transaction (the rights of {@code tx}'s session are checked): the
   * message exists iff that transaction commits, and the receiver is woken then.
   */
  public long send(Tx tx, String mailbox, byte[] body, String idempotencyKey) throws SQLException {
    return send(tx, mailbox, body, idempotencyKey, true);
  }

  private long send(Tx tx, String mailbox, byte[] body, String idempotencyKey, boolean wake) throws SQLException {
    Session s = tx.session();
    if (idempotencyKey != null) {
      access(tx, ACCESS, mailbox, "WRITE", "mailbox");
      if (tx.update(CLAIM_KEY, mailbox, idempotencyKey) == 0) {
        return tx.queryLong(KEYED, mailbox, idempotencyKey);
      }
    }
    Optional<Long> id = tx.queryOne(SEND, rs -> rs.getLong(1), s.principalId(), body, mailbox, s.principalId(),
        s.admin(), s.id(), "WRITE", "mailbox:" + mailbox, wake);
    if (id.isEmpty()) {
      access(tx, ACCESS, mailbox, "WRITE", "mailbox");
      throw new IllegalStateException("send refused without a reason");
    }
    if (idempotencyKey != null) {
      tx.update(SET_KEY, id.get(), mailbox, idempotencyKey);
    }
    return id.get();
  }

  /** Sends several messages in one transaction, in list order; returns their ids. */
  public List<Long> sendBatch(Session s, String mailbox, List<byte[]> bodies) {
    return kernel.callChecked(s, "mailbox.send", "mailbox:" + mailbox, false, tx -> {
      List<Long> ids = tx.query(SEND_MANY, rs -> rs.getLong(1), s.principalId(), mailbox, s.principalId(), s.admin(),
          s.id(), "WRITE", "mailbox:" + mailbox, tx.connection().createArrayOf("bytea", bodies.toArray(byte[][]::new)));
      if (ids.size() < bodies.size()) {
        access(tx, ACCESS, mailbox, "WRITE", "mailbox");
        throw new IllegalStateException("send refused without a reason");
      }
      if (bodies.isEmpty()) {
        access(tx, ACCESS, mailbox, "WRITE", "mailbox");
      }
      tx.notifyAfterCommit(CHANNEL, mailbox);
      return ids;
    });
  }

  /** Publishes to every mailbox subscribed to {@code topic} (WRITE on it); returns how many received a copy. */
  public int publish(Session s, String topic, byte[] body) {
    return kernel.callChecked(s, "topic.publish", "topic:" + topic, false, tx -> {
      access(tx, TOPIC_ACCESS, topic, "WRITE", "topic");
      List<String> boxes = tx.query(PUBLISH, rs -> rs.getString(1), s.principalId(), body, topic);
      for (String b : new java.util.TreeSet<>(boxes)) {
        tx.notifyAfterCommit(CHANNEL, b);
      }
      return boxes.size();
    });
  }

  // ---- receive --------------------------------------------------------------------------------

  /**
   * Takes up to {@code max} of the oldest messages of {@code mailbox} in the caller's transaction: they
   * are gone iff it commits. Returns at once, possibly empty.
   */
  public List<Message> recv(Tx tx, String mailbox, int max) throws SQLException {
    return take(tx, mailbox, max, false);
  }

  /**
   * {@link #recv(Tx, String, int)}; with {@code asyncIfEmpty}, a receive that took nothing lets its
   * transaction commit without waiting for the WAL flush. Only for a transaction that does nothing
   * else: it changed nothing but its audit record.
   */
  private List<Message> take(Tx tx, String mailbox, int max, boolean asyncIfEmpty) throws SQLException {
    if (max < 1) {
      throw SyscallException.invalid("max must be at least 1");
    }
    Session s = tx.session();
    var rows = tx.query(RECV, rs -> rs.getBoolean(1) ? (rs.getObject(2) == null ? EMPTY : map(rs)) : null,
        s.principalId(), s.admin(), s.id(), "READ", "mailbox:" + mailbox, mailbox, mailbox, max, asyncIfEmpty);
    if (rows.isEmpty()) {
      throw SyscallException.notFound("no mailbox named '" + mailbox + "'");
    }
    if (rows.getFirst() == null) {
      throw SyscallException.denied("'" + s.principal() + "' lacks READ on mailbox:" + mailbox);
    }
    return rows.getFirst() == EMPTY ? List.of() : rows;
  }

  private static final Message EMPTY = new Message(0, null, null, null, null, null);

  /**
   * Receives up to {@code max} messages, waiting up to {@code timeout} for the first (woken by NOTIFY,
   * re-checking every second in case a notification was lost). Returns an empty list on timeout.
   */
  public List<Message> recv(Session s, String mailbox, int max, Duration timeout) {
    return recv(s, mailbox, max, timeout, (tx, got) -> { });
  }

  /** What a receiver does with the messages it took, inside the transaction that takes them. */
  @FunctionalInterface
  public interface Handler {
    void handle(Tx tx, List<Message> messages) throws SQLException;
  }

  /**
   * {@link #recv(Session, String, int, Duration)} that runs {@code handler} on the messages in the
   * transaction taking them: its effects (a reply {@link #send(Tx, String, byte[], String)}, rows of
   * its own) commit together with their removal, with one WAL flush, or not at all and the messages
   * stay. Exactly-once processing, not only delivery. Not run on a timeout.
   */
  public List<Message> recv(Session s, String mailbox, int max, Duration timeout, Handler handler) {
    listen();
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      var waiter = waiters.computeIfAbsent(mailbox, k -> new CompletableFuture<>());
      List<Message> got = kernel.callChecked(s, "mailbox.recv", "mailbox:" + mailbox, false, tx -> {
        List<Message> taken = take(tx, mailbox, max, true);
        if (!taken.isEmpty()) {
          handler.handle(tx, taken);
        }
        return taken;
      });
      long left = deadline - System.nanoTime();
      if (!got.isEmpty() || left <= 0) {
        return got;
      }
      try {
        waiter.get(Math.min(left, TimeUnit.SECONDS.toNanos(1)), TimeUnit.NANOSECONDS);
      } catch (TimeoutException | ExecutionException e) {
        // look again
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new SyscallException(SyscallException.Code.UNAVAILABLE, "interrupted while receiving from " + mailbox);
      }
    }
  }

  private void listen() {
    if (!listening) {
      synchronized (this) {
        if (!listening) {
          var l = NotificationListener.of(kernel.database());
          kernel.onClose(l);
          l.subscribe(CHANNEL, this::onMail);
          listening = true;
        }
      }
    }
  }

  private void onMail(String mailbox) {
    if (mailbox == null) {
      var all = new ArrayList<>(waiters.keySet());
      all.forEach(this::onMail);
      return;
    }
    var f = waiters.remove(mailbox);
    if (f != null) {
      f.complete(null);
    }
  }

  /** A row of RECV: column 1 is the rights flag, the message follows. */
  private static Message map(ResultSet rs) throws SQLException {
    return new Message(rs.getLong(2), rs.getString(3), rs.getString(4), rs.getString(5), rs.getBytes(6),
        rs.getTimestamp(7).toInstant());
  }
}
