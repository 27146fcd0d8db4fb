package org.dbos.kernel;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.management.OperatingSystemMXBean;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.sql.SQLException;
import java.util.Optional;
import java.util.Properties;
import java.util.UUID;
import org.dbos.kernel.db.Database;
import org.dbos.kernel.db.PostgresServer;
import org.dbos.kernel.node.Membership;
import org.dbos.kernel.security.Secrets;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running DBOS node: its locked data directory, the database (embedded or external), the migrated
 * schema, the kernel and the node's membership. Boot order matters and is the reverse of close.
 */
public final class Node implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Node.class);
  public static final String VERSION = Optional.ofNullable(Node.class.getPackage().getImplementationVersion())
      .orElse("0.1.0-SNAPSHOT");

  private final DataDirectory dir;
  private final PostgresServer embedded;
  private final Kernel kernel;
  private final Membership membership;
  private final String databaseUrl;
  private final String schemaVersion;
  private final Optional<String> bootstrappedAdminSecret;

  private Node(DataDirectory dir, PostgresServer embedded, Kernel kernel, Membership membership, String databaseUrl,
               String schemaVersion, Optional<String> bootstrappedAdminSecret) {
    this.dir = dir;
    this.embedded = embedded;
    this.kernel = kernel;
    this.membership = membership;
    this.databaseUrl = databaseUrl;
    this.schemaVersion = schemaVersion;
    this.bootstrappedAdminSecret = bootstrappedAdminSecret;
  }

  /**
   * Boots a node. Fails with a one-line {@link SyscallException}: FAILED_PRECONDITION when the data
   * directory is in use, UNAVAILABLE when the database cannot be started or reached, INVALID_ARGUMENT
   * for a malformed URL.
   */
  public static Node boot(NodeConfig cfg) {
    return boot(DataDirectory.lock(cfg.dataDir()), cfg);
  }

  /** Boots on a data directory the caller already locked; the node owns (and unlocks) it from here on. */
  public static Node boot(DataDirectory dir, NodeConfig cfg) {
    PostgresServer embedded = null;
    Database db = null;
    try {
      Properties props = dir.properties();
      String url;
      String user;
      String password;
      if (cfg.databaseUrl() == null) {
        int port = cfg.pgPort() > 0 ? cfg.pgPort()
            : Integer.parseInt(props.getProperty("pg.port", String.valueOf(NodeConfig.DEFAULT_PG_PORT)));
        password = dir.databasePassword();
        embedded = PostgresServer.start(dir.pgData(), dir.socketDir(), dir.postgresLog(), port, password);
        url = embedded.jdbcUrl("dbos");
        user = PostgresServer.SUPERUSER;
        props.setProperty("pg.port", String.valueOf(port));
      } else {
        url = cfg.databaseUrl();
        user = cfg.databaseUser();
        password = cfg.databasePassword();
        if (password != null) {
          dir.setDatabasePassword(password);
        }
      }
      var meters = cfg.meters() != null ? cfg.meters() : new SimpleMeterRegistry();
      db = Database.connect(url, user, password, cfg.poolSize(), meters);
      String schemaVersion = String.valueOf(db.migrate().targetSchemaVersion);
      if ("null".equals(schemaVersion)) {
        schemaVersion = currentSchemaVersion(db);
      }
      UUID nodeId = Ids.uuid7();
      Kernel kernel = new Kernel(db, nodeId, meters);
      Optional<String> adminSecret = bootstrapAdmin(kernel, dir);
      var membership = new Membership(kernel, nodeId, cfg.heartbeat(), cfg.deadAfter(), cfg.onFenced());
      membership.join(hostname(), ProcessHandle.current().pid(), dir.root().toString(),
          Runtime.getRuntime().availableProcessors(), memoryMb(), new ObjectMapper().writeValueAsString(cfg.labels()),
          cfg.httpAddress(), VERSION);
      kernel.onClose(membership);

      props.setProperty("database.url", url);
      if (user != null) {
        props.setProperty("database.user", user);
      }
      props.setProperty("pid", String.valueOf(ProcessHandle.current().pid()));
      props.setProperty("node.id", nodeId.toString());
      if (cfg.httpAddress() != null) {
        props.setProperty("http.address", cfg.httpAddress());
      } else {
        props.remove("http.address");
      }
      dir.writeProperties(props);
      log.atInfo().addKeyValue("node", nodeId).addKeyValue("database", Database.redact(url))
          .addKeyValue("schema", schemaVersion).log("node up");
      return new Node(dir, embedded, kernel, membership, url, schemaVersion, adminSecret);
    } catch (RuntimeException | com.fasterxml.jackson.core.JsonProcessingException e) {
      if (db != null) {
        db.close();
      }
      if (embedded != null) {
        embedded.close();
      }
      dir.close();
      if (e instanceof RuntimeException re) {
        throw re;
      }
      throw new IllegalStateException(e);
    }
  }

  /**
   * Gives the built-in admin a password if it has none yet. The guarded UPDATE lets exactly one of
   * several nodes starting together win; the winner keeps the secret in its data directory.
   */
  private static Optional<String> bootstrapAdmin(Kernel kernel, DataDirectory dir) {
    String secret = Secrets.generate();
    boolean won = kernel.database().transaction(c -> {
      try (var ps = c.prepareStatement(
          "UPDATE principals SET secret_hash = ? WHERE name = 'admin' AND secret_hash IS NULL")) {
        ps.setString(1, Secrets.hash(secret));
        return ps.executeUpdate() == 1;
      }
    });
    if (!won) {
      return Optional.empty();
    }
    dir.writeAdminCredential(secret);
    log.info("bootstrapped principal 'admin'; its password is in {}", dir.adminCredentialFile());
    return Optional.of(secret);
  }

  private static String currentSchemaVersion(Database db) {
    return db.transaction(c -> {
      try (var rs = c.createStatement().executeQuery(
          "SELECT version FROM flyway_schema_history WHERE success ORDER BY installed_rank DESC LIMIT 1")) {
        return rs.next() ? rs.getString(1) : "none";
      }
    });
  }

  private static String hostname() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return "localhost";
    }
  }

  private static long memoryMb() {
    var os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    return Math.max(1, os.getTotalMemorySize() / (1024 * 1024));
  }

  public Kernel kernel() {
    return kernel;
  }

  public Membership membership() {
    return membership;
  }

  public UUID id() {
    return membership.self();
  }

  public DataDirectory dataDirectory() {
    return dir;
  }

  /** The JDBC URL other nodes and tools use to join (without the password). */
  public String databaseUrl() {
    return databaseUrl;
  }

  public boolean embedded() {
    return embedded != null;
  }

  public String schemaVersion() {
    return schemaVersion;
  }

  /** The admin password if this node bootstrapped the database in this start. */
  public Optional<String> bootstrappedAdminSecret() {
    return bootstrappedAdminSecret;
  }

  /** Whether the database answers: what /ready reports. */
  public boolean ready() {
    if (membership.fenced()) {
      return false;
    }
    try (var c = kernel.database().connection()) {
      return c.isValid(2);
    } catch (SQLException e) {
      return false;
    }
  }

  /** Says the node is stopping before its front ends close (see {@link Database#stopping}). */
  public void stopping() {
    kernel.database().stopping();
  }

  @Override
  public void close() {
    stopping();
    kernel.close();
    if (embedded != null) {
      embedded.close();
    }
    dir.close();
    log.info("node {} stopped", membership.self());
  }
}
