package org.dbos.server.etcd;

import static org.junit.jupiter.api.Assertions.*;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.dbos.kernel.Node;
import org.dbos.kernel.kv.KvStore;
import org.dbos.kernel.testing.TestNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Black-box: Debian's etcdctl 3.4 against DBOS's etcd API. */
class EtcdctlTest {
  static Node node;
  static EtcdServer etcd;
  static Etcdctl ctl;

  @BeforeAll
  static void start() {
    node = TestNode.boot();
    etcd = EtcdServer.start(node.kernel(), "127.0.0.1", 0);
    ctl = new Etcdctl(etcd.address());
  }

  @AfterAll
  static void stop() {
    etcd.close();
    node.close();
  }

  static long revision(String json) {
    Matcher m = Pattern.compile("\"revision\":(\\d+)").matcher(json);
    assertTrue(m.find(), json);
    return Long.parseLong(m.group(1));
  }

  @Test
  void putGetDelete() {
    assertEquals("OK\n", ctl.run("put", "/p/a", "1").ok().out());
    ctl.run("put", "/p/b", "2").ok();
    ctl.run("put", "/p/c", "3").ok();
    ctl.run("put", "/q", "4").ok();
    assertEquals("/p/a\n1\n", ctl.run("get", "/p/a").ok().out());
    assertEquals("/p/a\n1\n/p/b\n2\n/p/c\n3\n", ctl.run("get", "/p/", "--prefix").ok().out());
    assertEquals("/p/c\n/p/b\n/p/a\n", ctl.run("get", "/p/", "--prefix", "--keys-only", "--sort-by=KEY",
        "--order=DESCEND").ok().out().replace("\n\n", "\n"));
    assertEquals("/p/c\n3\n/q\n4\n", ctl.run("get", "/p/c", "--from-key").ok().out());
    assertEquals("/p/b\n2\n", ctl.run("get", "/p/b", "/p/c").ok().out());
    assertEquals("/p/a\n1\n", ctl.run("get", "/p/", "--prefix", "--limit=1", "--consistency=s").ok().out());
    long rev = revision(ctl.run("get", "/p/a", "-w", "json").ok().out());
    ctl.run("put", "/p/a", "new").ok();
    assertEquals("/p/a\n1\n", ctl.run("get", "/p/a", "--rev=" + rev).ok().out());
    assertEquals("OK\n/p/a\nnew\n", ctl.run("put", "/p/a", "newer", "--prev-kv").ok().out());
    assertEquals("2\n/p/a\nnewer\n/p/b\n2\n", ctl.run("del", "/p/a", "/p/c", "--prev-kv").ok().out());
    assertEquals("1\n", ctl.run("del", "/p/", "--prefix").ok().out());
    assertEquals("", ctl.run("get", "/p/", "--prefix").ok().out());
  }

  @Test
  void txnInteractive() {
    ctl.run("put", "/t/k", "v1").ok();
    String script = "value(\"/t/k\") = \"v1\"\n\nput /t/k v2\nput /t/other x\n\nget /t/k\n\n";
    String out = ctl.runWithInput(script, "txn").ok().out();
    assertEquals("SUCCESS\n\nOK\n\nOK\n", out);
    out = ctl.runWithInput(script, "txn").ok().out();
    assertEquals("FAILURE\n\n/t/k\nv2\n", out);
  }

  @Test
  void compactionAndHistory() {
    long r1 = revision(ctl.run("put", "/c/k", "1", "-w", "json").ok().out());
    long r2 = revision(ctl.run("put", "/c/k", "2", "-w", "json").ok().out());
    assertEquals("compacted revision " + r2 + "\n", ctl.run("compaction", "--physical", String.valueOf(r2)).ok().out());
    var bad = ctl.run("get", "/c/k", "--rev=" + r1);
    assertNotEquals(0, bad.exit());
    assertTrue(bad.err().contains("etcdserver: mvcc: required revision has been compacted"), bad.err());
    assertEquals("/c/k\n2\n", ctl.run("get", "/c/k", "--rev=" + r2).ok().out());
    var future = ctl.run("get", "/c/k", "--rev=" + (r2 + 1000));
    assertTrue(future.err().contains("etcdserver: mvcc: required revision is a future revision"), future.err());
  }

  @Test
  void leases() throws Exception {
    String grant = ctl.run("lease", "grant", "60").ok().out();
    Matcher m = Pattern.compile("lease ([0-9a-f]+) granted with TTL\\((\\d+)s\\)").matcher(grant);
    assertTrue(m.find(), grant);
    String id = m.group(1);
    ctl.run("put", "/l/k", "v", "--lease=" + id).ok();
    String ttl = ctl.run("lease", "timetolive", id, "--keys").ok().out();
    assertTrue(ttl.contains("granted with TTL(60s)") && ttl.contains("attached keys([/l/k])"), ttl);
    assertTrue(ctl.run("lease", "list").ok().out().contains(id));
    assertTrue(ctl.run("lease", "keep-alive", "--once", id).ok().out().contains("keepalived with TTL(60)"));
    assertEquals("lease " + id + " revoked\n", ctl.run("lease", "revoke", id).ok().out());
    assertEquals("", ctl.run("get", "/l/k").ok().out());
    var gone = ctl.run("lease", "revoke", id);
    assertTrue(gone.err().contains("etcdserver: requested lease not found"), gone.err());
    assertTrue(ctl.run("lease", "timetolive", id).ok().out().contains("already expired"));
  }

  @Test
  void watchFromThePastThenLive() throws Exception {
    long r1 = revision(ctl.run("put", "/w/a", "1", "-w", "json").ok().out());
    ctl.run("put", "/w/b", "2").ok();
    Process p = ctl.start("watch", "/w/", "--prefix", "--rev=" + r1, "--prev-kv");
    try {
      var lines = new ArrayList<String>();
      var reader = new BufferedReader(new InputStreamReader(p.getInputStream()));
      readLines(reader, lines, 6);
      ctl.run("del", "/w/a").ok();
      readLines(reader, lines, 9);
      assertEquals(List.of("PUT", "/w/a", "1", "PUT", "/w/b", "2", "DELETE", "/w/a", "1"), lines.subList(0, 9), lines.toString());
    } finally {
      p.destroyForcibly();
      p.waitFor();
    }
  }

  private static void readLines(BufferedReader r, List<String> lines, int n) throws Exception {
    while (lines.size() < n) {
      String l = r.readLine();
      assertNotNull(l, "watch ended early: " + lines);
      if (!l.isEmpty()) {
        lines.add(l);
      }
    }
  }

  /** etcdctl's lock is built on Txn (create-revision compares), leases and watches. */
  @Test
  void lockReleasesItsKey() {
    assertEquals("locked\n", ctl.run("lock", "/locks/one", "echo", "locked").ok().out());
    assertTrue(ctl.run("get", "/locks/", "--prefix").ok().out().isEmpty(), "the lock key is gone after unlock");
  }

  @Test
  void usersAndAuth() {
    String admin = "admin:" + node.dataDirectory().adminCredential().orElseThrow();
    var denied = ctl.run("user", "add", "alice:pw1");
    assertTrue(denied.err().contains("etcdserver: permission denied"), denied.toString());
    assertEquals("User alice created\n", ctl.run("--user", admin, "user", "add", "alice:pw1").ok().out());
    assertTrue(ctl.run("--user", admin, "user", "list").ok().out().contains("alice"));
    var wrong = ctl.run("--user", "alice:nope", "get", "x");
    assertTrue(wrong.err().contains("etcdserver: authentication failed, invalid user ID or password"), wrong.toString());
    assertEquals("Authentication Enabled\n", ctl.run("--user", admin, "auth", "enable").ok().out());
    try {
      var anonymous = ctl.run("put", "/auth/k", "v");
      assertTrue(anonymous.err().contains("etcdserver: user name is empty"), anonymous.toString());
      var noRight = ctl.run("--user", "alice:pw1", "put", "/auth/k", "v");
      assertTrue(noRight.err().contains("etcdserver: permission denied"), noRight.toString());
      node.kernel().principals().grant(node.kernel().system(), "alice", org.dbos.kernel.Right.WRITE, "kv:/auth/");
      assertEquals("OK\n", ctl.run("--user", "alice:pw1", "put", "/auth/k", "v").ok().out());
    } finally {
      ctl.run("--user", admin, "auth", "disable").ok();
    }
    assertEquals("/auth/k\nv\n", ctl.run("get", "/auth/k").ok().out());
  }

  /** etcd roles are DBOS roles: permissions on key prefixes, granted to users, checked with --user. */
  @Test
  void rolesAndPermissions() {
    String admin = "admin:" + node.dataDirectory().adminCredential().orElseThrow();
    assertTrue(ctl.run("role", "add", "nobody").err().contains("etcdserver: permission denied"));
    assertEquals("Role reader created\n", ctl.run("--user", admin, "role", "add", "reader").ok().out());
    assertTrue(ctl.run("--user", admin, "role", "add", "reader").err().contains("etcdserver: role name already exists"));
    assertEquals("Role reader updated\n",
        ctl.run("--user", admin, "role", "grant-permission", "reader", "--prefix=true", "read", "/roles/").ok().out());
    ctl.run("--user", admin, "role", "grant-permission", "reader", "--prefix=true", "readwrite", "/roles/open/").ok();
    ctl.run("--user", admin, "role", "grant-permission", "reader", "read", "/exact").ok();
    assertTrue(ctl.run("--user", admin, "role", "grant-permission", "reader", "read", "/a", "/c").err()
        .contains("[/a, /c) is neither"), "a range that is no prefix is refused, not widened");
    assertEquals("""
        Role reader
        KV Read:
        	/exact
        	[/roles/, /roles0) (prefix /roles/)
        	[/roles/open/, /roles/open0) (prefix /roles/open/)
        KV Write:
        	[/roles/open/, /roles/open0) (prefix /roles/open/)
        """, ctl.run("--user", admin, "role", "get", "reader").ok().out());
    assertTrue(ctl.run("--user", admin, "role", "list").ok().out().contains("reader\n"));
    ctl.run("--user", admin, "user", "add", "bob:pw2").ok();
    assertEquals("Role reader is granted to user bob\n",
        ctl.run("--user", admin, "user", "grant-role", "bob", "reader").ok().out());
    assertEquals("User: bob\nRoles: reader\n", ctl.run("--user", admin, "user", "get", "bob").ok().out());
    assertTrue(ctl.run("--user", admin, "user", "grant-role", "bob", "nosuch").err()
        .contains("etcdserver: role name not found"));
    ctl.run("put", "/roles/a", "1").ok();
    assertEquals("Authentication Enabled\n", ctl.run("--user", admin, "auth", "enable").ok().out());
    try {
      assertEquals("/roles/a\n1\n", ctl.run("--user", "bob:pw2", "get", "/roles/a").ok().out());
      assertTrue(ctl.run("--user", "bob:pw2", "put", "/roles/a", "2").err().contains("etcdserver: permission denied"));
      assertTrue(ctl.run("--user", "bob:pw2", "get", "/other").err().contains("etcdserver: permission denied"));
      assertEquals("OK\n", ctl.run("--user", "bob:pw2", "put", "/roles/open/x", "2").ok().out());
      ctl.run("--user", "bob:pw2", "get", "/exact").ok();
      assertTrue(ctl.run("--user", "bob:pw2", "snapshot", "save", "/tmp/dbos-denied-snapshot.db").err()
          .contains("etcdserver: permission denied"), "a snapshot holds every key: it needs READ on all of them");
      assertTrue(ctl.run("--user", "bob:pw2", "get", "/exactly").err().contains("etcdserver: permission denied"),
          "a permission on one key covers that key only");
      assertTrue(ctl.run("--user", "bob:pw2", "get", "--prefix", "/exact").err().contains("etcdserver: permission denied"));
      assertEquals("Permission of range [/roles/, /roles0) is revoked from role reader\n",
          ctl.run("--user", admin, "role", "revoke-permission", "reader", "/roles/", "--prefix=true").ok().out());
      assertTrue(ctl.run("--user", admin, "role", "revoke-permission", "reader", "/nothing").err()
          .contains("etcdserver: permission is not granted to the role"));
      assertTrue(ctl.run("--user", "bob:pw2", "get", "/roles/a").err().contains("etcdserver: permission denied"));
      assertEquals("Role reader is revoked from user bob\n",
          ctl.run("--user", admin, "user", "revoke-role", "bob", "reader").ok().out());
      assertTrue(ctl.run("--user", admin, "user", "revoke-role", "bob", "reader").err()
          .contains("etcdserver: role is not granted to the user"));
      assertTrue(ctl.run("--user", "bob:pw2", "put", "/roles/open/x", "3").err().contains("etcdserver: permission denied"));
      ctl.run("--user", admin, "user", "grant-role", "bob", "reader").ok();
      assertEquals("Role reader deleted\n", ctl.run("--user", admin, "role", "delete", "reader").ok().out());
      assertTrue(ctl.run("--user", "bob:pw2", "put", "/roles/open/x", "4").err().contains("etcdserver: permission denied"));
      assertTrue(ctl.run("--user", admin, "role", "get", "reader").err().contains("etcdserver: role name not found"));
    } finally {
      ctl.run("--user", admin, "auth", "disable").ok();
    }
    assertEquals("/roles/open/x\n2\n", ctl.run("get", "/roles/open/x").ok().out());
  }

  @Test
  void endpointStatusHealthAndMembers() {
    String status = ctl.run("endpoint", "status", "-w", "json").ok().out();
    assertTrue(status.contains("\"version\":\"3.5.13\""), status);
    var health = ctl.run("endpoint", "health");
    assertTrue((health.out() + health.err()).contains("is healthy"), health.toString());
    String members = ctl.run("member", "list").ok().out();
    assertTrue(members.contains("started") && members.contains("http://" + etcd.address()), members);
  }

  /**
   * `snapshot save` gets etcd's bbolt file: `snapshot status` checks its pages, and `snapshot restore`
   * into a real etcd gives the same keys, history (above the compaction) and leases. 1,280 values of 1
   * KiB make a tree of several levels, one of 300 KB spans overflow pages.
   */
  @Test
  void snapshotRestoresIntoARealEtcd() throws Exception {
    ctl.run("put", "/snap/a", "1").ok();
    long compactAt = revision(ctl.run("put", "/snap/a", "2", "-w", "json").ok().out());
    ctl.run("put", "/snap/gone", "x").ok();
    ctl.run("compaction", String.valueOf(compactAt)).ok();
    long beforeDelete = revision(ctl.run("put", "/snap/a", "3", "-w", "json").ok().out());
    ctl.run("del", "/snap/gone").ok();
    for (int t = 0; t < 10; t++) {
      var ops = new StringBuilder("\n");
      for (int i = 0; i < KvStore.MAX_TXN_OPS; i++) {
        ops.append("put /snap/many/").append(t).append('/').append(i).append(" ").append("v".repeat(1024)).append('\n');
      }
      ctl.runWithInput(ops + "\n\n", "txn").ok();
    }
    Matcher lease = Pattern.compile("lease ([0-9a-f]+) granted").matcher(ctl.run("lease", "grant", "600").ok().out());
    assertTrue(lease.find());
    ctl.run("put", "/snap/leased", "l", "--lease=" + lease.group(1)).ok();
    ctl.runWithInput("b".repeat(300_000), "put", "/snap/big").ok(); // etcdctl reads a value this long from stdin
    long revision = revision(ctl.run("get", "/snap/a", "-w", "json").ok().out());

    var file = java.nio.file.Files.createTempDirectory("dbos-snap-").resolve("s.db");
    file.getParent().toFile().deleteOnExit(); // deleted in reverse order of registration: the file, then this
    file.toFile().deleteOnExit();
    assertTrue(ctl.run("snapshot", "save", file.toString()).ok().out().contains("Snapshot saved at " + file));
    String status = ctl.run("snapshot", "status", file.toString(), "-w", "json").ok().out();
    assertTrue(status.contains("\"revision\":" + revision + ","), status);

    try (RealEtcd restored = RealEtcd.restore(file)) {
      var real = new Etcdctl(restored.endpoint());
      for (String[] get : List.of(new String[] {"get", "/snap/", "--prefix", "-w", "json"},
          new String[] {"get", "/snap/a", "--rev=" + beforeDelete, "-w", "json"},
          new String[] {"get", "/snap/", "--prefix", "--rev=" + compactAt, "--keys-only"})) {
        assertEquals(ctl.run(get).ok().out().replaceAll("\"header\":\\{[^}]*}", ""),
            real.run(get).ok().out().replaceAll("\"header\":\\{[^}]*}", ""), String.join(" ", get));
      }
      assertEquals(revision, revision(real.run("get", "/snap/a", "-w", "json").ok().out()));
      var compacted = real.run("get", "/snap/a", "--rev=" + (compactAt - 1));
      assertTrue(compacted.err().contains("required revision has been compacted"), compacted.err());
      assertTrue(real.run("lease", "timetolive", lease.group(1), "--keys").ok().out().contains("attached keys([/snap/leased])"));
    }
  }

  /** `endpoint hashkv` hashes the kept revisions: stable while nothing is written, changed by a put. */
  @Test
  void hashKv() {
    String before = ctl.run("endpoint", "hashkv", "-w", "json").ok().out();
    assertTrue(before.contains("\"hash\":"), before);
    assertEquals(hash(before), hash(ctl.run("endpoint", "hashkv", "-w", "json").ok().out()));
    ctl.run("put", "/hash/k", "v").ok();
    assertNotEquals(hash(before), hash(ctl.run("endpoint", "hashkv", "-w", "json").ok().out()));
  }

  private static String hash(String json) {
    var m = java.util.regex.Pattern.compile("\"hash\":(\\d+)").matcher(json);
    assertTrue(m.find(), json);
    return m.group(1);
  }
}
