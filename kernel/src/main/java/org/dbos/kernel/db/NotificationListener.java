package org.dbos.kernel.db;

import java.lang.reflect.Field;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.postgresql.core.BaseConnection;
import org.postgresql.core.PGStream;
import org.postgresql.core.QueryExecutorBase;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One LISTEN connection per database pool, shared by the services that wait (the scheduler for new
 * work and results, mailboxes for messages). Handlers run on the listener thread and must be quick:
 * they wake waiters, nothing more. After the connection is lost and re-established, every handler is
 * called with a {@code null} payload, since notifications sent meanwhile are gone.
 */
public final class NotificationListener implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NotificationListener.class);
  private static final Map<Database, NotificationListener> BY_DATABASE = new ConcurrentHashMap<>();
  /** How long one wait for notifications blocks; bounds how long a new LISTEN waits for the lock. */
  private static final int WAIT_MS = 50;

  private final Database db;
  private final Map<String, List<Consumer<String>>> handlers = new ConcurrentHashMap<>();
  private final ReentrantLock lock = new ReentrantLock(true);
  private final Thread thread;
  private volatile Connection connection;
  private volatile boolean closed;

  private NotificationListener(Database db) {
    this.db = db;
    this.thread = Thread.ofPlatform().name("dbos-listen").daemon().unstarted(this::loop);
  }

  /** The listener of {@code db}, started on first use; it stops when {@link #close} is called. */
  public static NotificationListener of(Database db) {
    return BY_DATABASE.computeIfAbsent(db, d -> {
      var l = new NotificationListener(d);
      l.thread.start();
      return l;
    });
  }

  /**
   * Calls {@code handler} with the payload of every notification on {@code channel} from now on. When
   * this returns, the LISTEN is in effect: a NOTIFY committed afterwards is delivered.
   */
  public void subscribe(String channel, Consumer<String> handler) {
    boolean first = handlers.computeIfAbsent(channel, c -> new CopyOnWriteArrayList<>()).isEmpty();
    handlers.get(channel).add(handler);
    if (first) {
      lock.lock();
      try {
        Connection c = connection();
        listen(c, channel);
      } catch (SQLException e) {
        log.warn("LISTEN {} failed, will retry on reconnect: {}", channel, e.getMessage());
        dropConnection();
      } finally {
        lock.unlock();
      }
    }
  }

  public void unsubscribe(String channel, Consumer<String> handler) {
    List<Consumer<String>> hs = handlers.get(channel);
    if (hs != null) {
      hs.remove(handler);
    }
  }

  private static void listen(Connection c, String channel) throws SQLException {
    try (var st = c.createStatement()) {
      st.execute("LISTEN \"" + channel.replace("\"", "") + "\"");
    }
  }

  /** Called with the lock held. */
  private Connection connection() throws SQLException {
    Connection c = connection;
    if (c == null || c.isClosed()) {
      c = db.connection();
      c.setAutoCommit(true);
      skipTrailingPeek(c);
      for (String ch : handlers.keySet()) {
        listen(c, ch);
      }
      connection = c;
    }
    return c;
  }

  /**
   * pgjdbc (42.7.x) ends every {@code getNotifications} that received something with a "more
   * pending?" peek that blocks the socket for 1 ms ({@code PGStream.hasMessagePending}: its "nothing
   * there" path on a read timeout never arms the check delay it has for exactly this). On the listen
   * connection that millisecond sits on every wake-up path (a message, new work, a watch event), so it
   * arms that delay for good: the peek then only looks at bytes already buffered, and a later batch is
   * read by the next {@code getNotifications}. Returns false, and the listener keeps working 1 ms
   * slower, if the driver's internals are not what this expects.
   */
  static boolean skipTrailingPeek(Connection c) {
    try {
      Object executor = c.unwrap(BaseConnection.class).getQueryExecutor();
      Field stream = QueryExecutorBase.class.getDeclaredField("pgStream");
      stream.setAccessible(true);
      Field nextCheck = PGStream.class.getDeclaredField("nextStreamAvailableCheckTime");
      nextCheck.setAccessible(true);
      nextCheck.setLong(stream.get(executor), Long.MAX_VALUE);
      return true;
    } catch (ReflectiveOperationException | SQLException | RuntimeException e) {
      log.debug("cannot skip pgjdbc's trailing notification peek (wake-ups take 1 ms longer): {}", e.toString());
      return false;
    }
  }

  private void dropConnection() {
    Connection c = connection;
    connection = null;
    if (c != null) {
      try {
        c.close();
      } catch (SQLException ignored) {
        // already broken
      }
    }
  }

  private void loop() {
    boolean reconnected = false;
    while (!closed) {
      PGNotification[] batch = null;
      lock.lock();
      try {
        boolean fresh = connection == null;
        Connection c = connection();
        if (fresh && reconnected) {
          handlers.values().forEach(hs -> hs.forEach(h -> call(h, null)));
        }
        reconnected = true;
        batch = c.unwrap(PGConnection.class).getNotifications(WAIT_MS);
      } catch (SQLException e) {
        if (!closed) {
          log.warn("notification connection lost: {}", e.getMessage());
          dropConnection();
          sleep(200);
        }
      } finally {
        lock.unlock();
      }
      if (batch != null) {
        for (PGNotification n : batch) {
          List<Consumer<String>> hs = handlers.get(n.getName());
          if (hs != null) {
            hs.forEach(h -> call(h, n.getParameter()));
          }
        }
      }
      // let a subscriber take the lock between waits
      Thread.onSpinWait();
    }
  }

  private static void call(Consumer<String> h, String payload) {
    try {
      h.accept(payload);
    } catch (RuntimeException e) {
      log.warn("notification handler failed: {}", e.toString());
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    closed = true;
    BY_DATABASE.remove(db, this);
    thread.interrupt();
    lock.lock();
    try {
      dropConnection();
    } finally {
      lock.unlock();
    }
  }
}
