package org.dbos.server.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import org.dbos.kernel.DataDirectory;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * How a client command finds the OS database and who it acts as. With no flags, in a node's directory,
 * it reads ./dbos-data (the URL the node recorded, the database password and the admin credential).
 */
final class ClientOptions {
  @Mixin DatabaseOptions db;

  @Option(names = {"-u", "--user"}, paramLabel = "PRINCIPAL", defaultValue = "${env:DBOS_USER:-admin}",
      description = "Act as this principal (default: ${DEFAULT-VALUE}).")
  String principal;

  @Option(names = "--password-file", paramLabel = "FILE",
      description = "File holding the principal's password (env DBOS_PASSWORD; default for admin: DIR/admin.credential).")
  Path passwordFile;

  /** A logged-in client: closes its session and connections when done. */
  record Client(Kernel kernel, Session session) implements AutoCloseable {
    @Override
    public void close() {
      try {
        kernel.closeSession(session);
      } finally {
        kernel.close();
      }
    }
  }

  Client connect() {
    Path dataDir = db.dataDir;
    String url = db.databaseUrl;
    String user = db.databaseUser;
    String password = db.password();
    DataDirectory dir = null;
    if (url == null || password == null) {
      dir = DataDirectory.open(dataDir);
      Properties p = dir.properties();
      if (url == null) {
        url = p.getProperty("database.url");
        if (user == null) {
          user = p.getProperty("database.user");
        }
      }
      if (password == null) {
        password = dir.storedDatabasePassword().orElse(null);
      }
    }
    if (url == null) {
      throw SyscallException.notFound("no database URL recorded in " + dataDir + ": pass --db");
    }
    Kernel kernel = Kernel.connect(url, user, password);
    try {
      return new Client(kernel, kernel.login(principal, secret(dir, dataDir)));
    } catch (RuntimeException e) {
      kernel.close();
      throw e;
    }
  }

  private String secret(DataDirectory dir, Path dataDir) {
    String s = readFile(passwordFile);
    if (s == null) {
      s = System.getenv("DBOS_PASSWORD");
    }
    if (s == null && principal.equals(Kernel.ADMIN)) {
      if (dir == null && Files.exists(dataDir)) {
        dir = DataDirectory.open(dataDir);
      }
      if (dir != null) {
        s = dir.adminCredential().orElse(null);
      }
    }
    if (s == null) {
      throw SyscallException.denied("no password for principal '" + principal
          + "': pass --password-file or set DBOS_PASSWORD");
    }
    return s;
  }

  static String readFile(Path f) {
    if (f == null) {
      return null;
    }
    try {
      return Files.readString(f).strip();
    } catch (IOException e) {
      throw SyscallException.invalid("cannot read " + f + ": " + e.getMessage());
    }
  }
}
