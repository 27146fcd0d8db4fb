package org.dbos.server.etcd;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs Debian's etcdctl 3.4 (API v3) against an endpoint; the tests fail, not skip, if it is missing. */
final class Etcdctl {
  static final Path BINARY = Path.of("/usr/bin/etcdctl");

  record Result(int exit, String out, String err) {
    Result ok() {
      if (exit != 0) {
        throw new AssertionError("etcdctl failed (" + exit + "): " + err + out);
      }
      return this;
    }
  }

  private final String endpoint;

  Etcdctl(String endpoint) {
    if (!Files.isExecutable(BINARY)) {
      throw new AssertionError("etcdctl is missing: apt-get install etcd-client");
    }
    this.endpoint = endpoint;
  }

  Result run(String... args) {
    return runWithInput(null, args);
  }

  Result runWithInput(String stdin, String... args) {
    var cmd = new ArrayList<>(List.of(BINARY.toString(), "--endpoints=" + endpoint, "--dial-timeout=5s",
        "--command-timeout=20s"));
    cmd.addAll(List.of(args));
    try {
      var pb = new ProcessBuilder(cmd);
      pb.environment().put("ETCDCTL_API", "3");
      Process p = pb.start();
      if (stdin != null) {
        p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
      }
      p.getOutputStream().close();
      var out = p.getInputStream().readAllBytes();
      var err = p.getErrorStream().readAllBytes();
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new AssertionError("etcdctl timed out: " + cmd);
      }
      return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8), new String(err, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new AssertionError("cannot run etcdctl: " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** Starts a long-running etcdctl (watch, keep-alive); the caller reads and destroys it. */
  Process start(String... args) throws IOException {
    var cmd = new ArrayList<>(List.of(BINARY.toString(), "--endpoints=" + endpoint));
    cmd.addAll(List.of(args));
    var pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().put("ETCDCTL_API", "3");
    return pb.start();
  }
}
