package org.dbos.server.cli;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs the built `bin/dbos` launcher as a user would, for the *IT tests. */
final class Dbos {
  /** What a run printed: its standard output as bytes ({@code raw}) and as UTF-8 text. */
  record Result(int exit, String out, String err, byte[] raw) {
    List<String> errLines() {
      return err.lines().filter(l -> !l.isBlank()).toList();
    }
  }

  /** A `dbos up` running in the background. */
  record Up(Process process, List<String> banner, Path errFile) implements AutoCloseable {
    long pid() {
      return process.pid();
    }

    /** Ctrl-C: SIGTERM runs the same shutdown hook as SIGINT. */
    void stop() throws InterruptedException {
      process.destroy();
      assertTrue(process.waitFor(60, TimeUnit.SECONDS), "dbos up did not stop");
    }

    void kill9() throws InterruptedException {
      process.toHandle().destroyForcibly();
      assertTrue(process.waitFor(30, TimeUnit.SECONDS));
    }

    @Override
    public void close() throws InterruptedException {
      if (process.isAlive()) {
        stop();
      }
    }
  }

  static Path launcher() {
    String p = System.getProperty("dbos.launcher");
    if (p == null) {
      fail("system property dbos.launcher is not set (run through ./mvnw verify)");
    }
    return Path.of(p);
  }

  static Result run(Path cwd, String... args) throws IOException, InterruptedException {
    return run(cwd, Map.of(), args);
  }

  /** With {@code env} added to the environment. */
  static Result run(Path cwd, Map<String, String> env, String... args) throws IOException, InterruptedException {
    return run(cwd, env, List.of(), args);
  }

  /** Run by {@code wrapper} (a command that runs the rest of its arguments: {@code unshare …}). */
  static Result run(Path cwd, Map<String, String> env, List<String> wrapper, String... args)
      throws IOException, InterruptedException {
    var cmd = new ArrayList<String>(wrapper);
    cmd.add(launcher().toString());
    cmd.addAll(List.of(args));
    var pb = new ProcessBuilder(cmd).directory(cwd.toFile());
    pb.environment().putAll(env);
    Process p = pb.start();
    var err = new StringBuilder();
    Thread errReader = Thread.ofVirtual().start(() -> {
      try {
        err.append(new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
      } catch (IOException ignored) {
        // process gone
      }
    });
    byte[] raw = p.getInputStream().readAllBytes();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "dbos " + String.join(" ", args) + " hung");
    errReader.join();
    return new Result(p.exitValue(), new String(raw, StandardCharsets.UTF_8), err.toString(), raw);
  }

  /** Starts `dbos up ARGS` and returns once it printed its banner (or fails with what it printed). */
  static Up up(Path cwd, String... args) throws IOException {
    var cmd = new ArrayList<String>();
    cmd.add(launcher().toString());
    cmd.add("up");
    cmd.addAll(List.of(args));
    Path errFile = cwd.resolve("up-" + System.nanoTime() + ".err");
    Process p = new ProcessBuilder(cmd).directory(cwd.toFile()).redirectError(errFile.toFile()).start();
    var reader = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    var banner = new ArrayList<String>();
    String line;
    while ((line = reader.readLine()) != null) {
      banner.add(line);
      if (line.startsWith("Try:")) {
        Thread.ofVirtual().start(() -> drain(reader));
        return new Up(p, banner, errFile);
      }
    }
    fail("dbos up exited before its banner: " + banner);
    return null;
  }

  private static void drain(BufferedReader r) {
    try {
      while (r.readLine() != null) {
        // keep the pipe flowing
      }
    } catch (IOException ignored) {
      // process gone
    }
  }
}
