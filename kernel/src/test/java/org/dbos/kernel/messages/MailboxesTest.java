package org.dbos.kernel.messages;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Node;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class MailboxesTest {
  static Node node;
  static Kernel kernel;
  static Mailboxes mail;
  static Session admin;

  @BeforeAll
  static void boot() {
    node = TestNode.boot();
    kernel = node.kernel();
    mail = new Mailboxes(kernel);
    admin = kernel.login("admin", node.dataDirectory().adminCredential().orElseThrow());
  }

  @AfterAll
  static void close() {
    node.close();
  }

  static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static String s(Message m) {
    return new String(m.body(), StandardCharsets.UTF_8);
  }

  @Test
  void concurrentSendersAndReceiversDeliverEachMessageOnceInSenderOrder() throws Exception {
    mail.create(admin, "work", null);
    int senders = 4;
    int perSender = 150;
    var pool = Executors.newFixedThreadPool(senders + 3);
    try {
      var received = new ConcurrentHashMap<String, Integer>();
      var order = new CopyOnWriteArrayList<String>();
      var total = new AtomicInteger();
      List<Future<?>> receivers = new ArrayList<>();
      for (int r = 0; r < 3; r++) {
        receivers.add(pool.submit(() -> {
          while (total.get() < senders * perSender) {
            for (Message m : mail.recv(admin, "work", 16, Duration.ofMillis(200))) {
              received.merge(s(m), 1, Integer::sum);
              order.add(s(m));
              total.incrementAndGet();
            }
          }
          return null;
        }));
      }
      List<Future<?>> sends = new ArrayList<>();
      for (int t = 0; t < senders; t++) {
        int sender = t;
        sends.add(pool.submit(() -> {
          for (int i = 0; i < perSender; i++) {
            mail.send(admin, "work", b(sender + ":" + i), null);
          }
          return null;
        }));
      }
      for (var f : sends) {
        f.get();
      }
      for (var f : receivers) {
        f.get();
      }
      assertEquals(senders * perSender, received.size());
      assertTrue(received.values().stream().allMatch(n -> n == 1), "a message was delivered twice");
      assertTrue(mail.recv(admin, "work", 10, Duration.ZERO).isEmpty());
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void oneReceiverSeesEachSendersMessagesInOrder() {
    mail.create(admin, "ordered", null);
    for (int i = 0; i < 50; i++) {
      mail.send(admin, "ordered", b("a" + i), null);
      if (i % 3 == 0) {
        mail.sendBatch(admin, "ordered", List.of(b("b" + i), b("b" + (i + 1))));
      }
    }
    var last = new HashMap<Character, Integer>();
    List<Message> got;
    int n = 0;
    while (!(got = mail.recv(admin, "ordered", 7, Duration.ZERO)).isEmpty()) {
      for (Message m : got) {
        char sender = s(m).charAt(0);
        int seq = Integer.parseInt(s(m).substring(1));
        assertTrue(last.getOrDefault(sender, -1) <= seq, "out of order: " + s(m));
        last.put(sender, seq);
        n++;
      }
    }
    assertEquals(50 + 34, n);
  }

  @Test
  void receiveRolledBackLeavesTheMessage() {
    mail.create(admin, "crashy", null);
    mail.send(admin, "crashy", b("survives"), null);
    assertThrows(IllegalStateException.class, () -> kernel.callChecked(admin, "test.recv", "mailbox:crashy", false, tx -> {
      assertEquals(1, mail.recv(tx, "crashy", 10).size());
      throw new IllegalStateException("receiver crashed before commit");
    }));
    var got = mail.recv(admin, "crashy", 10, Duration.ZERO);
    assertEquals(List.of("survives"), got.stream().map(MailboxesTest::s).toList());
  }

  /** A blocking receive's handler commits with the take: a failed handler leaves the message, a good one replies once. */
  @Test
  void receiveAndReplyInOneTransaction() throws Exception {
    mail.create(admin, "requests", null);
    mail.create(admin, "replies", null);
    var replier = Executors.newSingleThreadExecutor();
    try {
      var first = replier.submit(() -> mail.recv(admin, "requests", 1, Duration.ofSeconds(10), (tx, m) -> {
        mail.send(tx, "replies", b("re: " + s(m.getFirst())), null);
        throw new IllegalStateException("handler failed after replying");
      }));
      mail.send(admin, "requests", b("ping"), null);
      var e = assertThrows(java.util.concurrent.ExecutionException.class, first::get);
      assertInstanceOf(IllegalStateException.class, e.getCause());
      assertTrue(mail.recv(admin, "replies", 10, Duration.ZERO).isEmpty(), "the reply rolled back with the take");
      var taken = mail.recv(admin, "requests", 1, Duration.ofSeconds(10),
          (tx, m) -> mail.send(tx, "replies", b("re: " + s(m.getFirst())), null));
      assertEquals(List.of("ping"), taken.stream().map(MailboxesTest::s).toList(), "the request was still there");
      assertEquals(List.of("re: ping"), mail.recv(admin, "replies", 10, Duration.ZERO).stream().map(MailboxesTest::s).toList());
      assertTrue(mail.recv(admin, "requests", 10, Duration.ZERO).isEmpty());
    } finally {
      replier.shutdownNow();
    }
  }

  @Test
  void sigkilledReceiverLosesNothing() throws Exception {
    mail.create(admin, "fragile", null);
    mail.send(admin, "fragile", b("m1"), null);
    mail.send(admin, "fragile", b("m2"), null);
    var db = node.kernel().database();
    String url = db.url();
    var props = node.dataDirectory().properties();
    String javaBin = java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Process child = new ProcessBuilder(javaBin, "--enable-native-access=ALL-UNNAMED", "-cp",
        System.getProperty("java.class.path"), ReceiverCrashMain.class.getName(), url, props.getProperty("database.user"),
        node.dataDirectory().storedDatabasePassword().orElseThrow(), node.dataDirectory().adminCredentialFile().toString(),
        "fragile").redirectError(ProcessBuilder.Redirect.INHERIT).start();
    try {
      var out = new java.io.BufferedReader(new java.io.InputStreamReader(child.getInputStream()));
      assertEquals("took 2", out.readLine());
      // the receiver holds both messages in its open transaction: nobody else sees them
      assertTrue(mail.recv(admin, "fragile", 10, Duration.ZERO).isEmpty());
      new ProcessBuilder("kill", "-9", String.valueOf(child.pid())).start().waitFor();
      child.waitFor();
      var got = mail.recv(admin, "fragile", 10, Duration.ofSeconds(10));
      assertEquals(List.of("m1", "m2"), got.stream().map(MailboxesTest::s).toList());
    } finally {
      child.destroyForcibly();
    }
  }

  @Test
  void sendInsideTheCallersTransactionCommitsWithIt() {
    mail.create(admin, "txbox", null);
    assertThrows(IllegalStateException.class, () -> kernel.callChecked(admin, "test.send", "mailbox:txbox", false, tx -> {
      mail.send(tx, "txbox", b("never"), null);
      throw new IllegalStateException("caller rolled back");
    }));
    kernel.callChecked(admin, "test.send", "mailbox:txbox", false, tx -> mail.send(tx, "txbox", b("kept"), null));
    assertEquals(List.of("kept"), mail.recv(admin, "txbox", 10, Duration.ZERO).stream().map(MailboxesTest::s).toList());
  }

  @Test
  void idempotentSendDeliversOnceEvenAfterDelivery() {
    mail.create(admin, "idem", null);
    long id1 = mail.send(admin, "idem", b("x"), "key-1");
    long id2 = mail.send(admin, "idem", b("x"), "key-1");
    assertEquals(id1, id2);
    assertEquals(1, mail.recv(admin, "idem", 10, Duration.ZERO).size());
    assertEquals(id1, mail.send(admin, "idem", b("x"), "key-1"));
    assertTrue(mail.recv(admin, "idem", 10, Duration.ZERO).isEmpty());
  }

  @Test
  void blockingReceiveTimesOutOrWakesOnSend() throws Exception {
    mail.create(admin, "waiting", null);
    long t0 = System.nanoTime();
    assertTrue(mail.recv(admin, "waiting", 1, Duration.ofMillis(300)).isEmpty());
    long waited = (System.nanoTime() - t0) / 1_000_000;
    assertTrue(waited >= 300 && waited < 2000, "waited " + waited + " ms");

    var pool = Executors.newSingleThreadExecutor();
    try {
      var f = pool.submit(() -> {
        long start = System.nanoTime();
        var got = mail.recv(admin, "waiting", 1, Duration.ofSeconds(10));
        return new Object[] {got, System.nanoTime() - start};
      });
      Thread.sleep(200); // let the receiver block (not synchronization: the test passes either way)
      long sent = System.nanoTime();
      mail.send(admin, "waiting", b("wake"), null);
      Object[] r = f.get();
      @SuppressWarnings("unchecked")
      var got = (List<Message>) r[0];
      assertEquals("wake", s(got.getFirst()));
      // woken by NOTIFY, not by the one-second fallback poll
      long after = (System.nanoTime() - sent) / 1_000_000;
      assertTrue(after < 500, "woke " + after + " ms after the send");
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void topicsFanOutToEverySubscriber() {
    mail.createTopic(admin, "news");
    for (String m : List.of("sub1", "sub2", "sub3")) {
      mail.create(admin, m, null);
      mail.subscribe(admin, "news", m);
    }
    assertEquals(3, mail.publish(admin, "news", b("extra")));
    for (String m : List.of("sub1", "sub2", "sub3")) {
      var got = mail.recv(admin, m, 10, Duration.ZERO);
      assertEquals(1, got.size());
      assertEquals("news", got.getFirst().topic());
    }
  }

  @Test
  void rightsAreCheckedAndAudited() {
    mail.create(admin, "private", null);
    kernel.principals().create(admin, "mallory", "user", "pw-m", null, null, false);
    Session m = kernel.login("mallory", "pw-m");
    var e = assertThrows(SyscallException.class, () -> mail.send(m, "private", b("hi"), null));
    assertEquals(SyscallException.Code.PERMISSION_DENIED, e.code());
    e = assertThrows(SyscallException.class, () -> mail.recv(m, "private", 1, Duration.ZERO));
    assertEquals(SyscallException.Code.PERMISSION_DENIED, e.code());
    e = assertThrows(SyscallException.class, () -> mail.send(m, "nowhere", b("hi"), null));
    assertEquals(SyscallException.Code.NOT_FOUND, e.code());
    kernel.principals().grant(admin, "mallory", Right.WRITE, "mailbox:private");
    mail.send(m, "private", b("hi"), null);
    assertEquals("mallory", mail.recv(admin, "private", 1, Duration.ZERO).getFirst().sender());
    Map<String, Long> audit = kernel.database().transaction(c -> {
      var rs = c.createStatement().executeQuery(
          "SELECT outcome, count(*) FROM audit WHERE object = 'mailbox:private' AND principal = 'mallory' GROUP BY 1");
      var out = new HashMap<String, Long>();
      while (rs.next()) {
        out.put(rs.getString(1), rs.getLong(2));
      }
      return out;
    });
    assertEquals(Map.of("denied", 2L, "ok", 1L), audit);
  }
}
