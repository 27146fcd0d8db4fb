package org.dbos.kernel;

import java.io.IOException;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Optional;
import java.util.Properties;

/**
 * A node's directory ({@code ./dbos-data} by default), private to its owner (mode 0700):
 * <pre>
 *   node.lock        held (an fcntl lock, FileChannel.tryLock) by the running node: a second node on the same directory is refused
 *   node.properties  how to reach this node's database and HTTP endpoint (read by the CLI)
 *   db-password      the database password (0600)
 *   admin.credential the admin's password, written by the node that bootstrapped the database (0600)
 *   pg/              the embedded PostgreSQL cluster; pg.log its server log; run/ its socket
 *   logs/            the node's JSON log
 * </pre>
 */
public final class DataDirectory implements AutoCloseable {
  public static final String NODE_PROPERTIES = "node.properties";
  private final Path root;
  private final FileChannel lockChannel;
  private final FileLock lock;

  private DataDirectory(Path root, FileChannel lockChannel, FileLock lock) {
    this.root = root;
    this.lockChannel = lockChannel;
    this.lock = lock;
  }

  /**
   * Creates (if needed) and locks {@code root} for a node. FAILED_PRECONDITION if another live node
   * holds it; the lock dies with its holder, so a SIGKILLed node leaves nothing to clean up.
   */
  public static DataDirectory lock(Path root) {
    try {
      root = root.toAbsolutePath().normalize();
      if (Files.exists(root) && !Files.isDirectory(root)) {
        throw SyscallException.invalid("data directory " + root + " is not a directory");
      }
      Files.createDirectories(root);
      Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwx------"));
      FileChannel ch = FileChannel.open(root.resolve("node.lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      FileLock lock;
      try {
        lock = ch.tryLock();
      } catch (java.nio.channels.OverlappingFileLockException e) {
        lock = null; // held by a node in this very JVM
      }
      if (lock == null) {
        ch.close();
        String pid = readProperties(root).getProperty("pid", "?");
        throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION,
            "data directory " + root + " is in use by a running dbos node (pid " + pid + ")");
      }
      return new DataDirectory(root, ch, lock);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot use data directory " + root, e);
    }
  }

  /** Opens {@code root} for reading (the CLI); NOT_FOUND if no node ever ran there. */
  public static DataDirectory open(Path root) {
    root = root.toAbsolutePath().normalize();
    if (!Files.exists(root.resolve(NODE_PROPERTIES))) {
      throw SyscallException.notFound("no dbos node in " + root
          + " (start one with `dbos up`, or pass --data-dir or --db)");
    }
    return new DataDirectory(root, null, null);
  }

  public Path root() {
    return root;
  }

  public Path pgData() {
    return root.resolve("pg");
  }

  public Path socketDir() {
    return root.resolve("run");
  }

  public Path postgresLog() {
    return root.resolve("pg.log");
  }

  /** Where a node on {@code root} writes its JSON log (known before the directory is locked). */
  public static Path logDir(Path root) {
    return root.toAbsolutePath().normalize().resolve("logs");
  }

  /** The database password, generated on first use. */
  public String databasePassword() {
    Path f = root.resolve("db-password");
    return readSecret(f).orElseGet(() -> {
      String pw = org.dbos.kernel.security.Secrets.generate();
      writeSecret(f, pw);
      return pw;
    });
  }

  public void setDatabasePassword(String password) {
    writeSecret(root.resolve("db-password"), password);
  }

  public Optional<String> storedDatabasePassword() {
    return readSecret(root.resolve("db-password"));
  }

  public Path adminCredentialFile() {
    return root.resolve("admin.credential");
  }

  public Optional<String> adminCredential() {
    return readSecret(adminCredentialFile());
  }

  public void writeAdminCredential(String secret) {
    writeSecret(adminCredentialFile(), secret);
  }

  public Properties properties() {
    return readProperties(root);
  }

  /** Atomically replaces node.properties. */
  public void writeProperties(Properties p) {
    try {
      Path tmp = root.resolve(NODE_PROPERTIES + ".tmp");
      try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
        p.store(w, "written by the running dbos node; read by the dbos CLI");
      }
      Files.move(tmp, root.resolve(NODE_PROPERTIES), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static Properties readProperties(Path root) {
    var p = new Properties();
    Path f = root.resolve(NODE_PROPERTIES);
    if (Files.exists(f)) {
      try (Reader r = Files.newBufferedReader(f, StandardCharsets.UTF_8)) {
        p.load(r);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return p;
  }

  private static Optional<String> readSecret(Path f) {
    try {
      return Files.exists(f) ? Optional.of(Files.readString(f).strip()) : Optional.empty();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + f, e);
    }
  }

  private static void writeSecret(Path f, String secret) {
    try {
      Path tmp = f.resolveSibling(f.getFileName() + ".tmp");
      Files.deleteIfExists(tmp);
      Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      Files.writeString(tmp, secret + "\n");
      Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + f, e);
    }
  }

  @Override
  public void close() {
    try {
      if (lock != null) {
        lock.release();
        lockChannel.close();
      }
    } catch (IOException ignored) {
      // released anyway when the process exits
    }
  }
}
