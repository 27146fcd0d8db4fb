package org.dbos.server.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.dbos.kernel.Node;
import org.dbos.kernel.Session;
import org.dbos.kernel.scheduler.Scheduler;
import org.dbos.kernel.scheduler.Worker;
import org.dbos.kernel.testing.TestDatabase;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The scheduler and message commands against a real node with a worker, as a user would type them. */
class SchedulerCliTest {
  static Node node;
  static Path dir;
  static List<String> connect;
  static Scheduler scheduler;
  static Session admin;

  record Result(int code, String out, String err) {}

  @BeforeAll
  static void boot() throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    node = TestNode.boot(db);
    Worker.start(node);
    dir = Files.createTempDirectory("dbos-cli-"); // holds the passwords: deleted after the class
    Path dbPw = Files.writeString(dir.resolve("db-pw"), db.password());
    Path adminPw = Files.writeString(dir.resolve("admin-pw"), node.dataDirectory().adminCredential().orElseThrow());
    connect = List.of("--db", db.url(), "--db-user", db.user(), "--db-password-file", dbPw.toString(),
        "--password-file", adminPw.toString());
    scheduler = new Scheduler(node.kernel());
    admin = node.kernel().login("admin", node.dataDirectory().adminCredential().orElseThrow());
  }

  @AfterAll
  static void close() throws IOException {
    node.close();
    try (var files = Files.list(dir)) {
      for (Path f : files.toList()) {
        Files.delete(f);
      }
    }
    Files.delete(dir);
  }

  /** Runs `dbos SUBCOMMAND… [connection options] -- ARGS…`. */
  static synchronized Result dbos(List<String> command, String... rest) {
    var args = new ArrayList<>(command);
    args.addAll(connect);
    args.addAll(List.of(rest));
    PrintStream out = System.out;
    PrintStream err = System.err;
    var o = new ByteArrayOutputStream();
    var e = new ByteArrayOutputStream();
    System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
    try {
      int code = Main.run(args.toArray(String[]::new));
      return new Result(code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(out);
      System.setErr(err);
    }
  }

  static long count(String sql) {
    return node.kernel().database().transaction(c -> {
      var rs = c.createStatement().executeQuery(sql);
      rs.next();
      return rs.getLong(1);
    });
  }

  @Test
  void runLogsPsShowOutputAndExitCode() {
    Result r = dbos(List.of("run"), "--", "sh", "-c", "echo hi; exit 3");
    assertEquals(0, r.code(), r.err());
    long id = Long.parseLong(r.out().strip());
    assertEquals("failed", scheduler.await(admin, id, Duration.ofSeconds(10)).state());
    Result logs = dbos(List.of("logs", String.valueOf(id)));
    assertEquals("hi\n", logs.out());
    Result ps = dbos(List.of("ps", "--state", "failed"));
    String row = ps.out().lines().filter(l -> l.startsWith(id + " ")).findFirst().orElseThrow(() -> new AssertionError(ps.out()));
    assertTrue(row.matches(id + "\\s+\\| failed\\s+\\| 3\\s+\\| default .*sh -c echo hi; exit 3.*"), row);
    // --wait follows the output and exits with the task's code
    Result waited = dbos(List.of("run", "--wait"), "--", "sh", "-c", "echo waited; exit 7");
    assertEquals(7, waited.code());
    assertTrue(waited.out().endsWith("waited\n"), waited.out());
  }

  @Test
  void killStopsARunningTask() {
    long id = Long.parseLong(dbos(List.of("run"), "--", "sleep", "30").out().strip());
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (!scheduler.get(admin, id).state().equals("running")) {
      assertTrue(System.nanoTime() < deadline);
      Thread.onSpinWait();
    }
    assertEquals(0, dbos(List.of("kill", String.valueOf(id))).code());
    assertEquals("cancelled", scheduler.await(admin, id, Duration.ofSeconds(15)).state());
    Result again = dbos(List.of("kill", String.valueOf(id)));
    assertEquals(1, again.code());
    assertEquals("dbos: task " + id + " already finished (cancelled)\n", again.err());
  }

  @Test
  void badInputGetsOneLineAndCreatesNothing() {
    long tasks = count("SELECT count(*) FROM tasks");
    long queues = count("SELECT count(*) FROM queues");
    Result r = dbos(List.of("run", "--queue", "nope"), "--", "true");
    assertEquals(4, r.code());
    assertEquals("dbos: no queue named 'nope'\n", r.err());
    r = dbos(List.of("run"), "--", "no-such-command-xyz");
    assertEquals(2, r.code());
    assertEquals("dbos: command not found: no-such-command-xyz\n", r.err());
    r = dbos(List.of("run", "--cpus", "-1"), "--", "true");
    assertEquals(2, r.code());
    assertEquals("dbos: cpus and memory must not be negative\n", r.err());
    r = dbos(List.of("queue", "create", "q1", "--concurrency", "-1"));
    assertEquals(2, r.code());
    assertEquals("dbos: --concurrency must not be negative, got -1\n", r.err());
    r = dbos(List.of("queue", "create", "q1", "--policy", "random"));
    assertEquals(2, r.code());
    assertTrue(r.err().startsWith("dbos: unknown policy 'random'"), r.err());
    r = dbos(List.of("cron", "add", "c1", "every day"), "--", "true");
    assertEquals(2, r.code());
    assertEquals("dbos: cron expression 'every day' must have 5 fields (minute hour day month weekday), has 2\n", r.err());
    assertEquals(tasks, count("SELECT count(*) FROM tasks"));
    assertEquals(queues, count("SELECT count(*) FROM queues"));
    assertEquals(0, count("SELECT count(*) FROM cron_schedules"));
  }

  @Test
  void queuesAndCronFromTheCommandLine() {
    assertEquals(0, dbos(List.of("queue", "create", "batch", "--policy", "priority", "--concurrency", "2",
        "--rate", "10/1s")).code());
    assertEquals(0, dbos(List.of("queue", "set", "batch", "--node-concurrency", "1")).code());
    String ls = dbos(List.of("queue", "ls")).out();
    assertTrue(ls.lines().anyMatch(l -> l.matches("batch\\s+\\| priority\\s+\\| 2\\s+\\| 1\\s+\\| 10/1s.*")), ls);
    assertEquals(0, dbos(List.of("cron", "add", "tick", "*/5 * * * *", "--tz", "Asia/Tokyo", "--queue", "batch"),
        "--", "echo", "tick").code());
    assertTrue(dbos(List.of("cron", "ls")).out().contains("*/5 * * * * | Asia/Tokyo | batch | echo tick"));
    assertEquals(0, dbos(List.of("cron", "rm", "tick")).code());
    assertEquals(4, dbos(List.of("cron", "rm", "tick")).code());
  }

  @Test
  void sendAndReceive() {
    assertEquals(0, dbos(List.of("mailbox", "create", "inbox")).code());
    Result sent = dbos(List.of("send", "inbox", "hello", "--key", "k1"));
    assertEquals(0, sent.code(), sent.err());
    assertEquals(sent.out(), dbos(List.of("send", "inbox", "hello", "--key", "k1")).out());
    Result got = dbos(List.of("recv", "inbox", "--timeout", "1s"));
    assertEquals("hello\n", got.out());
    Result none = dbos(List.of("recv", "inbox", "--timeout", "200ms"));
    assertEquals(1, none.code());
    assertEquals("dbos: no message in inbox within 200ms\n", none.err());
    assertEquals(4, dbos(List.of("send", "nobox", "x")).code());
  }
}
