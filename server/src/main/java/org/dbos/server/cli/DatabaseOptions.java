package org.dbos.server.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Where the OS database is: a node directory, or an explicit JDBC URL and its credentials. */
final class DatabaseOptions {
  @Option(names = "--data-dir", paramLabel = "DIR", defaultValue = "${env:DBOS_DATA_DIR:-dbos-data}",
      description = "The node directory (default: ${DEFAULT-VALUE}).")
  Path dataDir;

  @Option(names = "--db", paramLabel = "JDBC_URL", defaultValue = "${env:DBOS_DATABASE_URL}",
      description = "An existing PostgreSQL (>= 15) instead of the node directory's (env DBOS_DATABASE_URL).")
  String databaseUrl;

  @Option(names = "--db-user", paramLabel = "USER", description = "Database user for --db (or user= in the URL).")
  String databaseUser;

  @Option(names = "--db-password-file", paramLabel = "FILE",
      description = "File holding the database password for --db (env DBOS_DATABASE_PASSWORD).")
  Path databasePasswordFile;

  /** The database password given on the command line or in the environment, or null. */
  String password() {
    String pw = ClientOptions.readFile(databasePasswordFile);
    return pw != null ? pw : System.getenv("DBOS_DATABASE_PASSWORD");
  }
}
