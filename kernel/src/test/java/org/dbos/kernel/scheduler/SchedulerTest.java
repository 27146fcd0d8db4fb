package org.dbos.kernel.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.List;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Node;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class SchedulerTest {
  static Node node;
  static Kernel kernel;
  static Scheduler scheduler;
  static Worker worker;
  static Session admin;

  @BeforeAll
  static void boot() {
    node = TestNode.boot();
    kernel = node.kernel();
    scheduler = new Scheduler(kernel);
    admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
    kernel.database().transaction(c -> c.createStatement().executeUpdate(
        "CREATE TABLE effects (task_id bigint, attempt int, at timestamptz DEFAULT clock_timestamp())"));
    var fns = new Functions()
        .register("record", ctx -> {
          ctx.tx().update("INSERT INTO effects (task_id, attempt) VALUES (?, ?)", ctx.taskId(), ctx.attempt());
          return "{\"ok\":true}";
        })
        .register("flaky", ctx -> {
          ctx.tx().update("INSERT INTO effects (task_id, attempt) VALUES (?, ?)", ctx.taskId(), ctx.attempt());
          if (ctx.attempt() < 3) {
            throw new IllegalStateException("attempt " + ctx.attempt() + " fails");
          }
          return null;
        })
        .register("boom", ctx -> {
          throw new IllegalStateException("always");
        });
    worker = Worker.start(node, fns, new Worker.Config(2, 16, 64, true, Duration.ofSeconds(1), Duration.ofMillis(300)));
  }

  @AfterAll
  static void close() {
    node.close();
  }

  static long count(String sql, Object... args) {
    return kernel.database().transaction(c -> {
      try (var ps = c.prepareStatement(sql)) {
        org.dbos.kernel.Tx.bind(ps, args);
        var rs = ps.executeQuery();
        rs.next();
        return rs.getLong(1);
      }
    });
  }

  /** The task's stdout then stderr, read from its DBFS files as the admin. */
  static String output(long id) {
    var fs = org.dbos.kernel.files.FileSystem.of(kernel);
    return new String(TaskOutput.read(fs, admin, id, TaskOutput.STDOUT, 0, 1 << 20), StandardCharsets.UTF_8)
        + new String(TaskOutput.read(fs, admin, id, TaskOutput.STDERR, 0, 1 << 20), StandardCharsets.UTF_8);
  }

  @Test
  void processTaskCapturesOutputAndExitCode() {
    long id = scheduler.submit(admin, TaskSpec.process(List.of("sh", "-c", "echo hi; echo oops >&2; exit 3")));
    TaskInfo t = scheduler.await(admin, id, Duration.ofSeconds(10));
    assertEquals("failed", t.state());
    assertEquals(3, t.exitCode());
    assertEquals(node.id(), t.nodeId());
    assertTrue(output(id).contains("hi\n"), output(id));
    assertTrue(output(id).contains("oops\n"), output(id));
    assertEquals(id, scheduler.list(admin, new TaskFilter("failed", "default", null, "admin", 10)).stream()
        .filter(x -> x.id() == id).findFirst().orElseThrow().id());
  }

  /** A process's output is a DBFS file of the task's owner: readable by it and admins, by no one else. */
  @Test
  void processOutputIsAFileOfItsOwner() {
    var carolP = kernel.principals().create(admin, "carol", "user", "pw-carol", null, null, false);
    kernel.principals().create(admin, "dave", "user", "pw-dave", null, null, false);
    kernel.principals().grant(admin, "carol", org.dbos.kernel.Right.WRITE, "queue:default");
    Session carol = kernel.login("carol", "pw-carol");
    Session dave = kernel.login("dave", "pw-dave");
    long id = scheduler.submit(carol, TaskSpec.process(List.of("sh", "-c", "echo carols secret; id -u")));
    assertEquals("succeeded", scheduler.await(carol, id, Duration.ofSeconds(10)).state());
    var fs = org.dbos.kernel.files.FileSystem.of(kernel);
    var st = fs.stat(admin, TaskOutput.path(id, TaskOutput.STDOUT), true);
    assertEquals(carolP.uid(), st.uid());
    assertEquals(0640, st.mode() & 07777);
    assertEquals("carols secret\n" + carolP.uid() + "\n",
        new String(TaskOutput.read(fs, carol, id, TaskOutput.STDOUT, 0, 1000), StandardCharsets.UTF_8),
        "the process ran as its owner and wrote its owner's file");
    var denied = assertThrows(org.dbos.kernel.files.FsException.class,
        () -> TaskOutput.read(fs, dave, id, TaskOutput.STDOUT, 0, 1000));
    assertEquals(org.dbos.kernel.files.Errno.EACCES, denied.errno());
  }

  @Test
  void functionWorkCommitsWithItsCompletion() {
    var ids = scheduler.submitAll(admin, java.util.stream.IntStream.range(0, 50)
        .mapToObj(i -> TaskSpec.function("record", "{\"i\":" + i + "}")).toList());
    for (long id : ids) {
      assertEquals("succeeded", scheduler.await(admin, id, Duration.ofSeconds(10)).state());
    }
    assertEquals(50, count("SELECT count(DISTINCT task_id) FROM effects WHERE task_id = ANY(?)", (Object) ids.toArray(Long[]::new)));
    assertEquals(50, count("SELECT count(*) FROM effects WHERE task_id = ANY(?)", (Object) ids.toArray(Long[]::new)));
    assertEquals("{\"ok\": true}", scheduler.get(admin, ids.getFirst()).resultJson());
  }

  @Test
  void retriesWithBackoffRollBackFailedAttempts() {
    long id = scheduler.submit(admin, TaskSpec.function("flaky", null).withRetries(3, Duration.ofMillis(100)));
    TaskInfo t = scheduler.await(admin, id, Duration.ofSeconds(10));
    assertEquals("succeeded", t.state());
    assertEquals(3, t.attempts());
    // the failed attempts' database work was rolled back with them
    assertEquals(1, count("SELECT count(*) FROM effects WHERE task_id = ?", id));
    long boom = scheduler.submit(admin, TaskSpec.function("boom", null).withRetries(2, Duration.ofMillis(50)));
    t = scheduler.await(admin, boom, Duration.ofSeconds(10));
    assertEquals("failed", t.state());
    assertEquals(2, t.attempts());
    assertTrue(t.error().contains("always"), t.error());
  }

  @Test
  void dependentsRunAfterSuccessAndFailAfterFailure() {
    long a = scheduler.submit(admin, TaskSpec.process(List.of("sh", "-c", "sleep 0.3")));
    long b = scheduler.submit(admin, TaskSpec.function("record", null).withDependsOn(a));
    long bad = scheduler.submit(admin, TaskSpec.process(List.of("false")));
    long c = scheduler.submit(admin, TaskSpec.function("record", null).withDependsOn(bad));
    long d = scheduler.submit(admin, TaskSpec.function("record", null).withDependsOn(c));
    TaskInfo tb = scheduler.await(admin, b, Duration.ofSeconds(10));
    assertEquals("succeeded", tb.state());
    assertFalse(tb.startedAt().isBefore(scheduler.get(admin, a).finishedAt()));
    assertEquals("failed", scheduler.await(admin, c, Duration.ofSeconds(10)).state());
    assertEquals("failed", scheduler.await(admin, d, Duration.ofSeconds(10)).state());
    assertEquals(0, count("SELECT count(*) FROM effects WHERE task_id IN (?, ?)", c, d));
    // depending on an already failed task: created failed
    long e = scheduler.submit(admin, TaskSpec.function("record", null).withDependsOn(bad));
    assertEquals("failed", scheduler.get(admin, e).state());
  }

  /** A process task that has started (it wrote its first line) and sleeps for 30 s. */
  static long sleepingProcess() {
    long id = scheduler.submit(admin, TaskSpec.process(List.of("sh", "-c", "echo started; sleep 30")));
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (!output(id).contains("started") && System.nanoTime() < deadline) {
      Thread.onSpinWait();
    }
    return id;
  }

  @Test
  void cancellingARunningProcessStopsIt() {
    long id = sleepingProcess();
    assertTrue(scheduler.cancel(admin, id));
    TaskInfo t = scheduler.await(admin, id, Duration.ofSeconds(10));
    assertEquals("cancelled", t.state());
    assertFalse(scheduler.cancel(admin, id));
    // a queued one is cancelled at once
    long later = scheduler.submit(admin, TaskSpec.process(List.of("true")).withNotBefore(Instant.now().plusSeconds(60)));
    assertTrue(scheduler.cancel(admin, later));
    assertEquals("cancelled", scheduler.get(admin, later).state());
  }

  @Test
  void aCancelWhoseNotificationNeverArrivesStillStopsTheProcess() {
    long id = sleepingProcess();
    // what Scheduler.cancel commits, without the notification: the worker's poll must find it
    kernel.database().transaction(c -> c.createStatement()
        .executeUpdate("UPDATE tasks SET cancel_requested = true WHERE id = " + id));
    TaskInfo t = scheduler.await(admin, id, Duration.ofSeconds(10));
    assertEquals("cancelled", t.state());
    assertTrue(Duration.between(t.startedAt(), t.finishedAt()).toMillis() < 5000, t.toString());
  }

  @Test
  void timeoutStopsTheProcess() {
    long id = scheduler.submit(admin, TaskSpec.process(List.of("sleep", "30")).withTimeout(Duration.ofMillis(300)));
    TaskInfo t = scheduler.await(admin, id, Duration.ofSeconds(10));
    assertEquals("timed_out", t.state());
    assertTrue(Duration.between(t.startedAt(), t.finishedAt()).toMillis() < 5000);
  }

  @Test
  void delayedStartWaitsUntilDue() {
    Instant at = Instant.now().plusMillis(1200);
    long id = scheduler.submit(admin, TaskSpec.function("record", null).withNotBefore(at));
    TaskInfo t = scheduler.await(admin, id, Duration.ofSeconds(10));
    assertEquals("succeeded", t.state());
    assertFalse(t.startedAt().isBefore(at.minusMillis(5)), t.startedAt() + " vs " + at);
  }

  @Test
  void priorityQueueRunsHighestFirst() {
    scheduler.createQueue(admin, QueueSpec.named("prio").withPolicy("priority").withConcurrency(1, null));
    long first = scheduler.submit(admin, TaskSpec.process(List.of("sleep", "0.3")).withQueue("prio"));
    await(() -> scheduler.get(admin, first).state().equals("running"));
    var ids = new ArrayList<Long>();
    for (int p : new int[] {1, 5, 3}) {
      ids.add(scheduler.submit(admin, TaskSpec.function("record", null).withQueue("prio").withPriority(p)));
    }
    for (long id : ids) {
      scheduler.await(admin, id, Duration.ofSeconds(10));
    }
    var order = kernel.database().transaction(c -> {
      var ps = c.prepareStatement("SELECT task_id FROM effects WHERE task_id = ANY(?) ORDER BY at");
      ps.setArray(1, c.createArrayOf("bigint", ids.toArray()));
      var rs = ps.executeQuery();
      var out = new ArrayList<Long>();
      while (rs.next()) {
        out.add(rs.getLong(1));
      }
      return out;
    });
    assertEquals(List.of(ids.get(1), ids.get(2), ids.get(0)), order);
  }

  static List<Instant[]> runs(List<Long> ids) {
    var out = new ArrayList<Instant[]>();
    for (long id : ids) {
      TaskInfo t = scheduler.get(admin, id);
      out.add(new Instant[] {t.startedAt(), t.finishedAt()});
    }
    return out;
  }

  @Test
  void concurrencyLimitCapsRunningTasks() {
    scheduler.createQueue(admin, QueueSpec.named("two").withConcurrency(2, null));
    var ids = new ArrayList<Long>();
    for (int i = 0; i < 5; i++) {
      ids.add(scheduler.submit(admin, TaskSpec.process(List.of("sleep", "0.2")).withQueue("two")));
    }
    for (long id : ids) {
      assertEquals("succeeded", scheduler.await(admin, id, Duration.ofSeconds(10)).state());
    }
    var r = runs(ids);
    for (Instant[] a : r) {
      long overlapping = r.stream().filter(b -> b[0].isBefore(a[0].plusMillis(1)) && b[1].isAfter(a[0])).count();
      assertTrue(overlapping <= 2, overlapping + " tasks ran at once");
    }
  }

  @Test
  void rateLimitSpreadsStarts() {
    scheduler.createQueue(admin, QueueSpec.named("slow").withRateLimit(5, Duration.ofSeconds(1)));
    var ids = scheduler.submitAll(admin, java.util.stream.IntStream.range(0, 10)
        .mapToObj(i -> TaskSpec.function("record", null).withQueue("slow")).toList());
    for (long id : ids) {
      assertEquals("succeeded", scheduler.await(admin, id, Duration.ofSeconds(10)).state());
    }
    var starts = runs(ids).stream().map(a -> a[0]).sorted().toList();
    long spread = Duration.between(starts.getFirst(), starts.getLast()).toMillis();
    // 5 banked tokens start at once, the other 5 come at 5 per second
    assertTrue(spread >= 700, "10 starts within " + spread + " ms");
  }

  @Test
  void fairShareInterleavesOwners() {
    scheduler.createQueue(admin, QueueSpec.named("fair").withConcurrency(1, null).withFairShare(true));
    kernel.principals().create(admin, "bob", "user", "pw-bob", null, null, false);
    kernel.principals().grant(admin, "bob", org.dbos.kernel.Right.WRITE, "queue:fair");
    Session bob = kernel.login("bob", "pw-bob");
    long blocker = scheduler.submit(admin, TaskSpec.process(List.of("sleep", "0.3")).withQueue("fair"));
    await(() -> scheduler.get(admin, blocker).state().equals("running"));
    var adminIds = scheduler.submitAll(admin, java.util.stream.IntStream.range(0, 8)
        .mapToObj(i -> TaskSpec.function("record", null).withQueue("fair")).toList());
    var bobIds = scheduler.submitAll(bob, java.util.stream.IntStream.range(0, 3)
        .mapToObj(i -> TaskSpec.function("record", null).withQueue("fair")).toList());
    for (long id : adminIds) {
      scheduler.await(admin, id, Duration.ofSeconds(10));
    }
    for (long id : bobIds) {
      scheduler.await(admin, id, Duration.ofSeconds(10));
    }
    Instant lastBob = bobIds.stream().map(id -> scheduler.get(admin, id).startedAt()).max(Instant::compareTo).orElseThrow();
    long adminBefore = adminIds.stream().filter(id -> scheduler.get(admin, id).startedAt().isBefore(lastBob)).count();
    // strict FIFO would run all 8 of admin's first; fair share alternates
    assertTrue(adminBefore <= 4, adminBefore + " of admin's tasks ran before bob's last: "
        + scheduler.list(admin, new TaskFilter(null, "fair", null, null, 20)).stream()
            .map(t -> t.owner() + "@" + t.startedAt()).toList());
  }

  @Test
  void localityRunsTasksOnlyOnMatchingNodes() {
    scheduler.createQueue(admin, QueueSpec.named("local").withPolicy("locality"));
    long elsewhere = scheduler.submit(admin, TaskSpec.function("record", null).withQueue("local")
        .withLabels(java.util.Map.of("zone", "mars")));
    long anywhere = scheduler.submit(admin, TaskSpec.function("record", null).withQueue("local"));
    assertEquals("succeeded", scheduler.await(admin, anywhere, Duration.ofSeconds(10)).state());
    assertEquals("queued", scheduler.get(admin, elsewhere).state());
    scheduler.cancel(admin, elsewhere);
    scheduler.createQueue(admin, QueueSpec.named("balanced").withPolicy("least_loaded"));
    long balanced = scheduler.submit(admin, TaskSpec.function("record", null).withQueue("balanced"));
    assertEquals("succeeded", scheduler.await(admin, balanced, Duration.ofSeconds(10)).state());
  }

  @Test
  void badInputIsRejectedWithNothingCreated() {
    long before = count("SELECT count(*) FROM tasks");
    var e = assertThrows(SyscallException.class,
        () -> scheduler.submit(admin, TaskSpec.process(List.of("true")).withQueue("nope")));
    assertEquals("no queue named 'nope'", e.getMessage());
    e = assertThrows(SyscallException.class,
        () -> scheduler.submit(admin, TaskSpec.process(List.of("no-such-command-xyz", "a"))));
    assertEquals("command not found: no-such-command-xyz", e.getMessage());
    e = assertThrows(SyscallException.class,
        () -> scheduler.submit(admin, TaskSpec.process(List.of("true")).withResources(-1, 0)));
    assertEquals(SyscallException.Code.INVALID_ARGUMENT, e.code());
    e = assertThrows(SyscallException.class,
        () -> scheduler.createQueue(admin, QueueSpec.named("neg").withConcurrency(-2, null)));
    assertEquals("concurrency must be positive, not -2", e.getMessage());
    e = assertThrows(SyscallException.class,
        () -> scheduler.addCron(admin, "c1", "61 * * * *", "UTC", TaskSpec.process(List.of("true"))));
    assertTrue(e.getMessage().contains("bad minute field '61'"), e.getMessage());
    e = assertThrows(SyscallException.class,
        () -> scheduler.addCron(admin, "c1", "* * * * *", "Mars/Base", TaskSpec.process(List.of("true"))));
    assertEquals("unknown time zone 'Mars/Base'", e.getMessage());
    assertEquals(before, count("SELECT count(*) FROM tasks"));
    assertEquals(0, count("SELECT count(*) FROM queues WHERE name = 'neg'"));
    assertEquals(0, count("SELECT count(*) FROM cron_schedules WHERE name = 'c1'"));
  }

  @Test
  void othersCannotSeeOrCancelYourTasks() {
    kernel.principals().create(admin, "eve", "user", "pw-eve", null, null, false);
    Session eve = kernel.login("eve", "pw-eve");
    var e = assertThrows(SyscallException.class, () -> scheduler.submit(eve, TaskSpec.process(List.of("true"))));
    assertEquals(SyscallException.Code.PERMISSION_DENIED, e.code());
    long id = scheduler.submit(admin, TaskSpec.process(List.of("true")));
    assertThrows(SyscallException.class, () -> scheduler.get(eve, id));
    assertThrows(SyscallException.class, () -> scheduler.cancel(eve, id));
    assertTrue(scheduler.list(eve, TaskFilter.all()).isEmpty());
    // granted, her processes run with her POSIX identity, not the node's
    kernel.principals().grant(admin, "eve", org.dbos.kernel.Right.WRITE, "queue:default");
    long mine = scheduler.submit(eve, TaskSpec.process(List.of("id", "-u")));
    assertEquals("succeeded", scheduler.await(eve, mine, Duration.ofSeconds(10)).state());
    int uid = kernel.principals().list(admin).stream().filter(p -> p.name().equals("eve")).findFirst().orElseThrow().uid();
    if ("root".equals(System.getProperty("user.name"))) {
      assertEquals(uid + "\n", output(mine));
    }
  }

  @Test
  void cronFiresOnceForMissedTicksAndMovesOn() {
    scheduler.addCron(admin, "every-minute", "* * * * *", "Europe/Paris",
        TaskSpec.function("record", null));
    // pretend the cluster was down for ten ticks
    kernel.database().transaction(c -> c.createStatement().executeUpdate(
        "UPDATE cron_schedules SET next_run_at = now() - interval '10 minutes' WHERE name = 'every-minute'"));
    await(() -> scheduler.crons(admin).getFirst().lastTask() != null);
    CronInfo ci = scheduler.crons(admin).getFirst();
    assertTrue(ci.nextRunAt().isAfter(Instant.now().minusSeconds(1)));
    assertEquals("succeeded", scheduler.await(admin, ci.lastTask(), Duration.ofSeconds(10)).state());
    assertEquals(1, count("SELECT count(*) FROM tasks WHERE cron = 'every-minute'"));
    scheduler.removeCron(admin, "every-minute");
    assertTrue(scheduler.crons(admin).isEmpty());
  }

  @Test
  void cronExpressionsInTimeZones() {
    Cron c = Cron.parse("30 9 * * MON-FRI", "America/New_York");
    var sat = ZonedDateTime.of(2026, 11, 28, 12, 0, 0, 0, ZoneId.of("UTC"));
    var next = c.next(sat);
    assertEquals(ZonedDateTime.of(2026, 11, 30, 9, 30, 0, 0, ZoneId.of("America/New_York")).toInstant(), next.toInstant());
    Cron every15 = Cron.parse("*/15 * * * *", "UTC");
    assertEquals(15, every15.next(ZonedDateTime.of(2026, 1, 1, 0, 0, 0, 0, ZoneId.of("UTC"))).getMinute());
    assertEquals(0, Cron.parse("@daily", "UTC").next(sat).getHour());
    assertThrows(SyscallException.class, () -> Cron.parse("* * *", "UTC"));
    assertThrows(SyscallException.class, () -> Cron.parse("* * 31 2 *", "UTC"));
  }

  interface Check {
    boolean ok();
  }

  static void await(Check check) {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (!check.ok()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("condition not met in 10 s");
      }
      Thread.onSpinWait();
      try {
        Thread.sleep(5);
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
    }
  }
}
