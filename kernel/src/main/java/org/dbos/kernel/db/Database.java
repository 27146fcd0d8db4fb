package org.dbos.kernel.db;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.micrometer.core.instrument.MeterRegistry;
import java.lang.reflect.Field;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.SQLTransientConnectionException;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import javax.sql.DataSource;
import org.dbos.kernel.SyscallException;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.output.MigrateResult;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The connection pool to the OS database and the rules for running a transaction on it: which
 * failures are retried (serialization failures, deadlocks, dropped connections) and how often.
 */
public final class Database implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Database.class);
  public static final String SCHEMA = "dbos";
  public static final int MAX_ATTEMPTS = 8;

  private final HikariDataSource pool;
  private final String url;
  /** HikariCP's per-thread list of the connections a thread returned last; null if not found. */
  private final ThreadLocal<List<?>> lastReturned;
  private volatile boolean stopping;

  private Database(HikariDataSource pool, String url) {
    this.pool = pool;
    this.url = url;
    this.lastReturned = lastReturnedLists(pool);
  }

  /**
   * Connects to {@code url}. Fails with UNAVAILABLE and a one-line message when the server cannot be
   * reached or refuses the credentials, INVALID_ARGUMENT when the URL is not a PostgreSQL JDBC URL.
   */
  public static Database connect(String url, String user, String password, int poolSize, MeterRegistry meters) {
    if (url == null || !url.startsWith("jdbc:postgresql://")) {
      throw SyscallException.invalid("not a PostgreSQL JDBC URL: " + url
          + " (expected jdbc:postgresql://HOST:PORT/DATABASE)");
    }
    var cfg = new HikariConfig();
    cfg.setJdbcUrl(url);
    if (user != null) {
      cfg.setUsername(user);
    }
    if (password != null) {
      cfg.setPassword(password);
    }
    cfg.setMaximumPoolSize(poolSize);
    cfg.setMinimumIdle(Math.min(2, poolSize));
    cfg.setPoolName("dbos");
    cfg.setAutoCommit(true);
    cfg.setConnectionTimeout(10_000);
    cfg.setInitializationFailTimeout(1); // fail at once, with the driver's reason, if the server is unreachable
    cfg.setSchema(SCHEMA);
    cfg.addDataSourceProperty("connectTimeout", "5");
    cfg.addDataSourceProperty("tcpKeepAlive", "true");
    cfg.addDataSourceProperty("ApplicationName", "dbos");
    cfg.addDataSourceProperty("reWriteBatchedInserts", "true");
    if (meters != null) {
      cfg.setMetricRegistry(meters);
    }
    try {
      return new Database(new HikariDataSource(cfg), url);
    } catch (RuntimeException e) {
      Throwable cause = e;
      while (cause.getCause() != null) {
        cause = cause.getCause();
      }
      throw new SyscallException(SyscallException.Code.UNAVAILABLE,
          "cannot reach the database at " + redact(url) + ": " + rootMessage(cause), e);
    }
  }

  /**
   * Applies the kernel's and the services' migrations; Flyway serializes concurrent nodes with a lock.
   * Each service numbers its migrations in a range of its own (kernel 1–9, files 10–19, scheduler 20–24,
   * messages 25–29, kv 30–39), so a service's new migration may come after a higher-numbered one of
   * another service was applied: out-of-order application is the normal case, not an accident.
   */
  public MigrateResult migrate() {
    Flyway flyway = Flyway.configure()
        .dataSource(pool)
        .schemas(SCHEMA)
        .createSchemas(true)
        .locations("classpath:db/migration")
        .outOfOrder(true)
        .load();
    MigrateResult result = flyway.migrate();
    if (result.migrationsExecuted > 0) {
      log.info("schema migrated to version {} ({} migrations)", result.targetSchemaVersion, result.migrationsExecuted);
    }
    return result;
  }

  public DataSource dataSource() {
    return pool;
  }

  public String url() {
    return url;
  }

  /**
   * A connection from the pool: the first free one in the pool's order, whichever thread asks. HikariCP
   * would first hand a thread the connection that thread returned last, which keeps one connection per
   * request stream only when every stream has a thread of its own. Front ends break that: the kernel
   * hands each FUSE request to the worker that has waited longest, so after a burst of concurrent
   * writers one serial writer's requests go round all of libfuse's workers and, with that affinity,
   * round as many PostgreSQL backends, each on cold CPU caches: every statement of a {@code tar -x}
   * ran 30–40 % slower (docs/BENCHMARKS.md, "Day 5"). Taking the first free connection keeps a serial
   * stream on one backend, while concurrent callers still get one connection each.
   */
  public Connection connection() throws SQLException {
    if (unreachableWhileStopping()) {
      throw new SQLTransientConnectionException("the database is unreachable and this node is stopping", "08001");
    }
    if (lastReturned != null) {
      lastReturned.get().clear();
    }
    return pool.getConnection();
  }

  /**
   * HikariCP (7.x) keeps a thread's last connections in {@code ConcurrentBag.threadLocalList} and has
   * no setting to turn that off. Returns null, and connections keep HikariCP's per-thread order (a
   * serial stream spread over threads is then slower, nothing else), if its internals are not what
   * this expects; {@code DatabaseTest} fails then.
   */
  @SuppressWarnings("unchecked")
  private static ThreadLocal<List<?>> lastReturnedLists(HikariDataSource pool) {
    try {
      Field poolField = HikariDataSource.class.getDeclaredField("pool");
      poolField.setAccessible(true);
      Object hikariPool = poolField.get(pool);
      Field bagField = hikariPool.getClass().getDeclaredField("connectionBag");
      bagField.setAccessible(true);
      Object bag = bagField.get(hikariPool);
      Field listField = bag.getClass().getDeclaredField("threadLocalList");
      listField.setAccessible(true);
      return (ThreadLocal<List<?>>) listField.get(bag);
    } catch (ReflectiveOperationException | RuntimeException e) {
      log.warn("cannot find HikariCP's per-thread connection lists ({}): a serial stream of requests carried "
          + "by many threads will use many connections", e.toString());
      return null;
    }
  }

  /** A unit of work on one connection inside one transaction. */
  @FunctionalInterface
  public interface Work<T> {
    T run(Connection c) throws SQLException;
  }

  /**
   * Runs {@code work} in one transaction and commits it, retrying the whole transaction when the
   * database reports a serialization failure or deadlock. Dropped connections are retried only before
   * the commit was sent: this runner cannot tell whether a lost commit landed (system calls can; see
   * {@code Kernel.call}). Not for work with side effects outside the database.
   */
  public <T> T transaction(Work<T> work) {
    for (int attempt = 1; ; attempt++) {
      try (Connection c = connection()) {
        c.setAutoCommit(false);
        try {
          T result = work.run(c);
          c.commit();
          return result;
        } catch (SQLException | RuntimeException e) {
          rollbackQuietly(c);
          throw e;
        } finally {
          c.setAutoCommit(true);
        }
      } catch (SQLException e) {
        if (isSerializationFailure(e) && attempt < MAX_ATTEMPTS) {
          backoff(attempt);
          continue;
        }
        throw translate(e);
      }
    }
  }

  /** Puts a connection back in auto-commit before it returns to the pool; a broken one the pool discards. */
  public static void restoreAutoCommit(Connection c) {
    try {
      if (!c.isClosed()) {
        c.setAutoCommit(true);
      }
    } catch (SQLException ignored) {
      // broken connection: the pool discards it
    }
  }

  public static void rollbackQuietly(Connection c) {
    try {
      if (!c.isClosed() && !c.getAutoCommit()) {
        c.rollback();
      }
    } catch (SQLException ignored) {
      // the connection is gone; the server rolls back for us
    }
  }

  /** 40001 serialization_failure, 40P01 deadlock_detected: the transaction may simply be run again. */
  public static boolean isSerializationFailure(SQLException e) {
    String s = e.getSQLState();
    return "40001".equals(s) || "40P01".equals(s);
  }

  /** Class 08 (connection exception), 57P01-03 (server shutting down or restarting). */
  public static boolean isConnectionLoss(SQLException e) {
    String s = e.getSQLState();
    return s != null && (s.startsWith("08") || s.equals("57P01") || s.equals("57P02") || s.equals("57P03"));
  }

  public static void backoff(int attempt) {
    long max = Math.min(200, 2L << Math.min(attempt, 7));
    try {
      Thread.sleep(ThreadLocalRandom.current().nextLong(1, max + 1));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SyscallException(SyscallException.Code.UNAVAILABLE, "interrupted");
    }
  }

  /** Maps a database error to the kernel's error codes, keeping PostgreSQL's one-line message. */
  public static SyscallException translate(SQLException e) {
    String state = e.getSQLState() == null ? "" : e.getSQLState();
    String msg = rootMessage(e);
    SyscallException.Code code;
    if (isConnectionLoss(e)) {
      code = SyscallException.Code.UNAVAILABLE;
    } else if (state.equals("42501")) {
      code = SyscallException.Code.PERMISSION_DENIED;
    } else if (state.equals("25006")) {
      code = SyscallException.Code.PERMISSION_DENIED;
    } else if (state.equals("23505")) {
      code = SyscallException.Code.ALREADY_EXISTS;
    } else if (state.startsWith("42") || state.startsWith("22") || state.startsWith("23")) {
      code = SyscallException.Code.INVALID_ARGUMENT;
    } else {
      code = SyscallException.Code.INTERNAL;
    }
    return new SyscallException(code, msg, e);
  }

  static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t && t.getMessage() == null) {
      t = t.getCause();
    }
    String m = t.getMessage() == null ? t.toString() : t.getMessage();
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }

  /** The URL without a password parameter, for messages and logs. */
  public static String redact(String url) {
    return url == null ? null : url.replaceAll("(?i)(password=)[^&]*", "$1***");
  }

  /**
   * The node is stopping: from now on, when the pool holds no connection at all (it keeps some while
   * the database answers), a connection is refused at once instead of after the usual ten seconds,
   * and {@link #unreachableWhileStopping} tells callers not to retry. What a stopping node still
   * writes (its tasks handed back, itself marked stopped) is lost anyway when the database is gone,
   * and the other nodes notice by its missing heartbeat; waiting at each step made such a stop take
   * over a minute. While the database answers, a stop's writes are retried as usual.
   */
  public void stopping() {
    stopping = true;
  }

  public boolean unreachableWhileStopping() {
    return stopping && pool.getHikariPoolMXBean().getTotalConnections() == 0;
  }

  @Override
  public void close() {
    pool.close();
  }
}
