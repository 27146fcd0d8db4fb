package org.dbos.kernel;

import java.nio.file.Path;

/**
 * Child process of {@link CrashTest}: boots a node with its own embedded PostgreSQL on a data
 * directory and runs system calls forever, printing "ok N" after call N returned. Each call writes two
 * rows in two tables, so a half-applied call would show as a row without its twin.
 */
public final class CrashWorker {
  public static void main(String[] args) {
    var cfg = NodeConfig.defaults(Path.of(args[0])).withPgPort(Integer.parseInt(args[1])).withPoolSize(4);
    Node node = Node.boot(cfg);
    Kernel k = node.kernel();
    k.database().transaction(c -> c.createStatement().executeUpdate("""
        CREATE TABLE IF NOT EXISTS crash_a (n bigint PRIMARY KEY, payload text NOT NULL);
        CREATE TABLE IF NOT EXISTS crash_b (n bigint PRIMARY KEY REFERENCES crash_a)"""));
    Session admin = k.openSession(Kernel.ADMIN, java.time.Duration.ofHours(1));
    System.out.println("ready");
    System.out.flush();
    String payload = "x".repeat(2000);
    for (long n = 1; ; n++) {
      long i = n;
      k.call(admin, "crash.put", Right.WRITE, "crash:" + i, tx -> {
        tx.update("INSERT INTO crash_a VALUES (?, ?)", i, payload);
        return tx.update("INSERT INTO crash_b VALUES (?)", i);
      });
      System.out.println("ok " + i);
      System.out.flush();
    }
  }
}
