package org.dbos.kernel.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.concurrent.atomic.AtomicInteger;
import org.dbos.kernel.db.Database;
import org.dbos.kernel.db.PostgresServer;

/**
 * The test harness's database: one real embedded PostgreSQL per test JVM (durable settings, as in
 * production), a template database migrated once, and a fresh copy of it for each caller.
 */
public final class TestDatabase {
  /** How to reach one fresh database. */
  public record Url(String url, String user, String password, String name) {}

  private static PostgresServer server;
  private static String password;
  private static final AtomicInteger counter = new AtomicInteger();
  private static final String TEMPLATE = "dbos_template";

  private TestDatabase() {}

  /** A new database, already migrated, private to the caller. */
  public static synchronized Url fresh() {
    start();
    String name = "t" + ProcessHandle.current().pid() + "_" + counter.incrementAndGet();
    try (Connection c = admin()) {
      c.createStatement().execute("CREATE DATABASE " + name + " TEMPLATE " + TEMPLATE);
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
    return new Url(server.jdbcUrl(name), PostgresServer.SUPERUSER, password, name);
  }

  /** A new, empty database (no schema): for tests of migration itself. */
  public static synchronized Url empty() {
    start();
    String name = "e" + ProcessHandle.current().pid() + "_" + counter.incrementAndGet();
    try (Connection c = admin()) {
      c.createStatement().execute("CREATE DATABASE " + name);
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
    return new Url(server.jdbcUrl(name), PostgresServer.SUPERUSER, password, name);
  }

  public static synchronized int port() {
    start();
    return server.port();
  }

  public static Connection admin() throws SQLException {
    return DriverManager.getConnection(server.jdbcUrl("postgres"), PostgresServer.SUPERUSER, password);
  }

  private static void start() {
    if (server != null) {
      return;
    }
    try {
      Path dir = Files.createTempDirectory("dbos-test-pg-");
      password = "test-" + ProcessHandle.current().pid();
      server = PostgresServer.start(dir.resolve("pg"), dir.resolve("run"), dir.resolve("pg.log"), freePort(), password);
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        server.close();
        deleteQuietly(dir);
      }));
      try (Connection c = admin()) {
        c.createStatement().execute("CREATE DATABASE " + TEMPLATE);
      }
      try (Database db = Database.connect(server.jdbcUrl(TEMPLATE), PostgresServer.SUPERUSER, password, 2, null)) {
        db.migrate();
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  public static int freePort() {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static void deleteQuietly(Path dir) {
    try (var s = Files.walk(dir)) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // best effort
    }
  }
}
