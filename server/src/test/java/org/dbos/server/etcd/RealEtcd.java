package org.dbos.server.etcd;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import org.dbos.kernel.testing.TestDatabase;

/**
 * A real etcd 3.4 (Debian's etcd-server) on loopback with a temporary data directory, fsync on (its
 * default), for differential tests and benchmarks. Fails if the binary is missing.
 */
public final class RealEtcd implements AutoCloseable {
  public static final Path BINARY = Path.of("/usr/bin/etcd");
  private final Process process;
  private final Path dir;
  private final int port;

  private RealEtcd(Process process, Path dir, int port) {
    this.process = process;
    this.dir = dir;
    this.port = port;
  }

  public static RealEtcd start() {
    try {
      return start(Files.createTempDirectory("dbos-real-etcd-"), TestDatabase.freePort(), TestDatabase.freePort());
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  /** Restores {@code snapshot} with etcdctl's {@code snapshot restore} into a new data directory and starts on it. */
  public static RealEtcd restore(Path snapshot) {
    try {
      Path dir = Files.createTempDirectory("dbos-real-etcd-");
      int client = TestDatabase.freePort();
      int peer = TestDatabase.freePort();
      var pb = new ProcessBuilder(Etcdctl.BINARY.toString(), "snapshot", "restore", snapshot.toString(),
          "--name", "default", "--data-dir", dir.resolve("data").toString(),
          "--initial-cluster", "default=http://127.0.0.1:" + peer, "--initial-advertise-peer-urls", "http://127.0.0.1:" + peer)
          .redirectErrorStream(true);
      pb.environment().put("ETCDCTL_API", "3");
      Process p = pb.start();
      String out = new String(p.getInputStream().readAllBytes());
      if (p.waitFor() != 0) {
        throw new AssertionError("snapshot restore failed: " + out);
      }
      return start(dir, client, peer);
    } catch (IOException e) {
      throw new AssertionError(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  private static RealEtcd start(Path dir, int client, int peer) {
    if (!Files.isExecutable(BINARY)) {
      throw new AssertionError("etcd is missing: apt-get install etcd-server");
    }
    try {
      var pb = new ProcessBuilder(BINARY.toString(), "--name", "default", "--data-dir", dir.resolve("data").toString(),
          "--listen-client-urls", "http://127.0.0.1:" + client, "--advertise-client-urls", "http://127.0.0.1:" + client,
          "--listen-peer-urls", "http://127.0.0.1:" + peer, "--initial-advertise-peer-urls", "http://127.0.0.1:" + peer,
          "--initial-cluster", "default=http://127.0.0.1:" + peer, "--log-level", "error", "--logger", "zap")
          .redirectErrorStream(true).redirectOutput(dir.resolve("etcd.log").toFile());
      Process p = pb.start();
      var etcd = new RealEtcd(p, dir, client);
      long deadline = System.nanoTime() + 15_000_000_000L;
      while (true) {
        if (!p.isAlive()) {
          throw new AssertionError("etcd exited: " + Files.readString(dir.resolve("etcd.log")));
        }
        try (var s = new Socket()) {
          s.connect(new InetSocketAddress("127.0.0.1", client), 200);
          if (new Etcdctl(etcd.endpoint()).run("endpoint", "health").exit() == 0) {
            return etcd;
          }
        } catch (IOException ignored) {
          // not yet listening
        }
        if (System.nanoTime() > deadline) {
          p.destroyForcibly();
          throw new AssertionError("etcd did not start: " + Files.readString(dir.resolve("etcd.log")));
        }
        Thread.sleep(50);
      }
    } catch (IOException e) {
      throw new AssertionError(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  public int port() {
    return port;
  }

  public String endpoint() {
    return "127.0.0.1:" + port;
  }

  @Override
  public void close() {
    process.destroyForcibly();
    try {
      process.waitFor();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    try (var s = Files.walk(dir)) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    } catch (IOException ignored) {
      // best effort
    }
  }
}
