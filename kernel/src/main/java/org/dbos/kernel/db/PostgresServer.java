package org.dbos.kernel.db;

import io.zonky.test.db.postgres.embedded.DefaultPostgresBinaryResolver;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.dbos.kernel.SyscallException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The embedded PostgreSQL server: real PostgreSQL 18 binaries from zonky's artifact, run as a child
 * process on a data directory with durable settings, listening on loopback only, password required.
 *
 * <p>We drive initdb/postgres ourselves instead of through zonky's {@code EmbeddedPostgres}: that class
 * is built for tests (fsync off via {@code -F}, {@code trust} authentication, no orphan adoption).
 *
 * <p>If the JVM dies by SIGKILL, a watchdog process (a shell loop on the JVM's pid) shuts PostgreSQL
 * down with a fast shutdown; should the watchdog die too, the next start finds the orphaned postmaster
 * through {@code postmaster.pid} and stops it before starting its own. Crash recovery is PostgreSQL's.
 *
 * <p>If PostgreSQL dies under a running node (killed, out of memory, a PANIC), the node starts it again
 * at once, then at growing intervals while it keeps failing: it recovers from its WAL, and the node's
 * connections reconnect, so calls fail with UNAVAILABLE only for those seconds.
 */
public final class PostgresServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PostgresServer.class);
  public static final String SUPERUSER = "postgres";
  private static final Duration STARTUP_TIMEOUT = Duration.ofSeconds(120);
  private static final Duration MAX_RESTART_DELAY = Duration.ofSeconds(30);

  private final Path binDir;
  private final Path pgData;
  private final Path socketDir;
  private final Path logFile;
  private final int port;
  private final String password;
  private Process postmaster;
  private Process watchdog;
  private int logStart;
  /** Set before an orderly stop, so that the postmaster's exit is not taken for a crash. */
  private volatile boolean closing;

  private PostgresServer(Path binDir, Path pgData, Path socketDir, Path logFile, int port, String password) {
    this.binDir = binDir;
    this.pgData = pgData;
    this.socketDir = socketDir;
    this.logFile = logFile;
    this.port = port;
    this.password = password;
  }

  /**
   * Starts PostgreSQL on {@code pgData}, creating the cluster (and the {@code dbos} database) on first
   * use. The caller must hold the node lock of the data directory, so a live postmaster found here is
   * an orphan of a dead node and is shut down first.
   */
  public static PostgresServer start(Path pgData, Path socketDir, Path logFile, int port, String password) {
    Path bin = Binaries.ensureExtracted();
    var server = new PostgresServer(bin, pgData, socketDir, logFile, port, password);
    server.initIfNeeded();
    server.stopOrphan();
    synchronized (server) {
      server.launch();
    }
    return server;
  }

  public int port() {
    return port;
  }

  public String jdbcUrl(String database) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/" + database;
  }

  private void initIfNeeded() {
    try {
      if (Files.exists(pgData.resolve("PG_VERSION"))) {
        return;
      }
      if (Files.isDirectory(pgData) && Files.list(pgData).findAny().isPresent()) {
        throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION,
            pgData + " is not empty but holds no PostgreSQL cluster (no PG_VERSION): refusing to touch it");
      }
      Files.createDirectories(pgData);
      Files.setPosixFilePermissions(pgData, PosixFilePermissions.fromString("rwx------"));
      Path pwFile = Files.createTempFile(pgData.getParent(), "initdb-", ".pw",
          PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      try {
        Files.writeString(pwFile, password);
        long t0 = System.nanoTime();
        run(List.of(bin("initdb"), "-D", pgData.toString(), "-U", SUPERUSER, "--pwfile=" + pwFile,
            "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions"), "initdb");
        log.atInfo().addKeyValue("ms", (System.nanoTime() - t0) / 1_000_000).log("initdb created {}", pgData);
      } finally {
        Files.deleteIfExists(pwFile);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Stops a postmaster still running on our data directory (its node died without shutting it down). */
  private void stopOrphan() {
    Path pidFile = pgData.resolve("postmaster.pid");
    if (!Files.exists(pidFile)) {
      return;
    }
    long pid;
    try {
      pid = Long.parseLong(Files.readAllLines(pidFile).getFirst().trim());
    } catch (IOException | RuntimeException e) {
      return; // unreadable or half-written: postgres itself decides whether it is stale
    }
    var handle = ProcessHandle.of(pid);
    if (handle.isEmpty() || !isPostgres(pid)) {
      return; // stale pid file: postgres removes it on start
    }
    log.warn("PostgreSQL (pid {}) of a node that died still runs on {}: shutting it down", pid, pgData);
    try {
      run(List.of(bin("pg_ctl"), "stop", "-D", pgData.toString(), "-m", "fast", "-w", "-t", "60"), "pg_ctl stop");
    } catch (SyscallException e) {
      if (handle.get().isAlive()) {
        throw e; // else it was already on its way down (the dead node's watchdog stopped it)
      }
    }
    long deadline = System.nanoTime() + STARTUP_TIMEOUT.toNanos();
    while (handle.get().isAlive()) {
      if (System.nanoTime() > deadline) {
        throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION,
            "PostgreSQL (pid " + pid + ") on " + pgData + " does not stop; stop it by hand");
      }
      sleep(20);
    }
  }

  private static boolean isPostgres(long pid) {
    try {
      String cmd = new String(Files.readAllBytes(Path.of("/proc/" + pid + "/cmdline")), StandardCharsets.UTF_8);
      return cmd.contains("postgres");
    } catch (IOException e) {
      return false;
    }
  }

  /** Starts the postmaster and its watchdog and waits until it takes connections; the caller holds this lock. */
  private void launch() {
    try {
      Files.createDirectories(socketDir);
      Files.setPosixFilePermissions(socketDir, PosixFilePermissions.fromString("rwx------"));
      List<String> cmd = new ArrayList<>(List.of(bin("postgres"), "-D", pgData.toString()));
      for (String setting : settings()) {
        cmd.add("-c");
        cmd.add(setting);
      }
      // setsid: a Ctrl-C on the terminal reaches the JVM only, which then shuts PostgreSQL down in order.
      var pb = new ProcessBuilder(withSetsid(wrap(cmd))).redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
      long t0 = System.nanoTime();
      logStart = Files.exists(logFile) ? Files.readAllLines(logFile, StandardCharsets.UTF_8).size() : 0;
      Process started = pb.start();
      postmaster = started;
      startWatchdog();
      awaitReady();
      // on a thread of its own: a restart waits for PostgreSQL, and onExit runs on the JDK's process reaper
      started.onExit().thenRun(() -> Thread.ofPlatform().name("dbos-postgres-restart").daemon()
          .start(() -> restart(started)));
      log.atInfo().addKeyValue("port", port).addKeyValue("ms", (System.nanoTime() - t0) / 1_000_000)
          .log("PostgreSQL started on {}", pgData);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Starts PostgreSQL again after {@code died} exited while the node runs, until it is up or the node stops. */
  private void restart(Process died) {
    for (int attempt = 1; ; attempt++) {
      synchronized (this) {
        if (closing || attempt == 1 && postmaster != died) {
          return;
        }
        if (attempt == 1) {
          log.error("PostgreSQL (pid {}) on {} exited with code {} while the node runs: starting it again",
              died.pid(), pgData, died.exitValue());
        }
        try {
          stopWatchdog();
          launch();
          log.warn("PostgreSQL started again on {} after {} attempt(s)", pgData, attempt);
          return;
        } catch (RuntimeException e) {
          log.error("starting PostgreSQL again on {} failed (attempt {}): {}", pgData, attempt, e.getMessage());
          if (postmaster.isAlive()) {
            postmaster.destroyForcibly(); // not ready in time: its crash recovery starts over next time
          }
        }
      }
      long delay = Math.min(MAX_RESTART_DELAY.toMillis(), 500L << Math.min(attempt, 6));
      try {
        Thread.sleep(delay);
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  /** Durable by construction: these are passed on the command line, so ALTER SYSTEM cannot undo them. */
  private List<String> settings() {
    return List.of(
        "listen_addresses=127.0.0.1",
        "port=" + port,
        "unix_socket_directories=" + socketDir,
        "fsync=on",
        "synchronous_commit=on",
        "full_page_writes=on",
        "max_connections=300",
        "shared_buffers=256MB",
        "log_checkpoints=on",
        // the background writer cleans buffers ahead of the backends: with PostgreSQL's default (at
        // most 100 pages per 200 ms) a committing backend evicted dirty pages itself, in its commit's
        // critical path (tar -x through the mount after a 300 MB write: 22.6-24.1 s, with these 19.6-20.1 s)
        "bgwriter_delay=20ms",
        "bgwriter_lru_maxpages=1000",
        "bgwriter_lru_multiplier=4",
        "wal_level=replica",
        "max_wal_size=2GB",
        "password_encryption=scram-sha-256");
  }

  /**
   * A shell loop that fast-shuts PostgreSQL down (SIGINT to the postmaster we started, not whatever
   * runs on the directory later) once this JVM is gone, whatever killed it.
   */
  private void startWatchdog() throws IOException {
    long jvm = ProcessHandle.current().pid();
    String script = "while kill -0 " + jvm + " 2>/dev/null; do sleep 1; done; kill -INT " + postmaster.pid();
    watchdog = new ProcessBuilder("setsid", "sh", "-c", script)
        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile())).start();
  }

  private void awaitReady() {
    long deadline = System.nanoTime() + STARTUP_TIMEOUT.toNanos();
    SQLException last = null;
    while (System.nanoTime() < deadline) {
      if (!postmaster.isAlive()) {
        throw new SyscallException(SyscallException.Code.UNAVAILABLE,
            "PostgreSQL failed to start on " + pgData + ": " + lastLogError());
      }
      try (Connection c = DriverManager.getConnection(jdbcUrl("postgres"), credentials())) {
        c.createStatement().execute("SELECT 1");
        ensureDatabase(c);
        return;
      } catch (SQLException e) {
        last = e;
      }
      sleep(25);
    }
    throw new SyscallException(SyscallException.Code.UNAVAILABLE,
        "PostgreSQL did not become ready within " + STARTUP_TIMEOUT.toSeconds() + " s: "
            + (last == null ? "" : last.getMessage()));
  }

  private Properties credentials() {
    var p = new Properties();
    p.setProperty("user", SUPERUSER);
    p.setProperty("password", password);
    p.setProperty("connectTimeout", "2");
    return p;
  }

  private static void ensureDatabase(Connection c) throws SQLException {
    try (var rs = c.createStatement().executeQuery("SELECT 1 FROM pg_database WHERE datname = 'dbos'")) {
      if (rs.next()) {
        return;
      }
    }
    c.createStatement().execute("CREATE DATABASE dbos");
  }

  /** The first PANIC or FATAL line this start wrote, ignoring our own connection attempts. */
  private String lastLogError() {
    try {
      List<String> all = Files.readAllLines(logFile, StandardCharsets.UTF_8);
      List<String> lines = all.subList(Math.min(logStart, all.size()), all.size()).stream()
          .filter(l -> !l.isBlank() && !l.contains("kill: No such process")).toList();
      for (String l : lines) {
        if (l.contains("could not create any TCP/IP sockets")) {
          return "port " + port + " is in use by another program (choose another with --pg-port)";
        }
        int at = Math.max(l.indexOf("PANIC:"), l.indexOf("FATAL:"));
        if (at >= 0 && !l.contains("the database system is starting up")
            && !l.contains("the database system is shutting down") && !l.contains("password authentication")) {
          return l.substring(at).replaceAll("\\s+", " ");
        }
      }
      if (lines.isEmpty()) {
        return "no output (see " + logFile + ")";
      }
      return String.join(" ", lines.subList(Math.max(0, lines.size() - 3), lines.size())).replaceAll("\\s+", " ");
    } catch (IOException e) {
      return "see " + logFile;
    }
  }

  @Override
  public void close() {
    closing = true;
    synchronized (this) {
      if (postmaster == null) {
        return;
      }
      if (postmaster.isAlive()) {
        try {
          run(List.of(bin("pg_ctl"), "stop", "-D", pgData.toString(), "-m", "fast", "-w", "-t", "60"), "pg_ctl stop");
        } catch (RuntimeException e) {
          log.warn("pg_ctl stop failed: {}", e.getMessage());
          postmaster.destroy();
        }
      }
      stopWatchdog();
      postmaster = null;
    }
  }

  private void stopWatchdog() {
    if (watchdog != null) {
      watchdog.descendants().forEach(ProcessHandle::destroy);
      watchdog.destroy();
      watchdog = null;
    }
  }

  private String bin(String name) {
    return binDir.resolve("bin").resolve(name).toString();
  }

  /** PostgreSQL refuses to run as root; as root we run it in a fresh user namespace, as zonky does. */
  private static List<String> wrap(List<String> cmd) {
    if (!isRoot()) {
      return cmd;
    }
    var out = new ArrayList<String>(List.of("unshare", "-U"));
    out.addAll(cmd);
    return out;
  }

  private static List<String> withSetsid(List<String> cmd) {
    var out = new ArrayList<String>(List.of("setsid"));
    out.addAll(cmd);
    return out;
  }

  private static boolean isRoot() {
    return "root".equals(System.getProperty("user.name"));
  }

  private void run(List<String> cmd, String what) {
    try {
      var p = new ProcessBuilder(wrap(cmd)).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (p.waitFor() != 0) {
        throw new SyscallException(SyscallException.Code.UNAVAILABLE, what + " failed: " + out.strip());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SyscallException(SyscallException.Code.UNAVAILABLE, what + " interrupted");
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SyscallException(SyscallException.Code.UNAVAILABLE, "interrupted");
    }
  }

  /** The PostgreSQL binaries, unpacked once per machine from zonky's artifact into the user's cache. */
  static final class Binaries {
    private static Path extracted;

    static synchronized Path ensureExtracted() {
      if (extracted != null) {
        return extracted;
      }
      try {
        var url = DefaultPostgresBinaryResolver.class.getClassLoader()
            .getResource("postgres-linux-x86_64.txz");
        String key = url == null ? "unknown" : Integer.toHexString(url.toString().hashCode());
        Path cache = Path.of(System.getProperty("user.home"), ".cache", "dbos");
        Path dir = cache.resolve("postgresql-" + key);
        if (!Files.exists(dir.resolve(".complete"))) {
          Files.createDirectories(cache);
          try (FileChannel ch = FileChannel.open(cache.resolve(".unpack.lock"),
                  StandardOpenOption.CREATE, StandardOpenOption.WRITE);
               FileLock ignored = ch.lock()) {
            if (!Files.exists(dir.resolve(".complete"))) {
              unpack(dir);
            }
          }
        }
        extracted = dir;
        return dir;
      } catch (IOException e) {
        throw new UncheckedIOException("cannot unpack the PostgreSQL binaries", e);
      }
    }

    private static void unpack(Path dir) throws IOException {
      Path tmp = Files.createTempDirectory(dir.getParent(), "unpack-");
      try (InputStream txz = DefaultPostgresBinaryResolver.INSTANCE.getPgBinary("Linux", "x86_64")) {
        var p = new ProcessBuilder("tar", "-xJ", "-C", tmp.toString()).redirectErrorStream(true).start();
        try (var in = p.getOutputStream()) {
          txz.transferTo(in);
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
          throw new IOException("tar failed: " + out);
        }
        Files.writeString(tmp.resolve(".complete"), "");
        if (Files.exists(dir)) {
          deleteTree(dir);
        }
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      }
    }

    private static void deleteTree(Path dir) throws IOException {
      try (var s = Files.walk(dir)) {
        for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
  }
}
