package org.dbos.server.cli;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.dbos.kernel.kv.Kv;
import org.dbos.kernel.kv.KvStore;
import org.dbos.kernel.kv.Watches;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** `dbos kv`: the etcd-style key-value store, straight through kernel calls (output as etcdctl's). */
@Command(name = "kv", mixinStandardHelpOptions = true,
    description = "Read and write the etcd-compatible key-value store (also served on the etcd API).",
    subcommands = {KvCommand.Get.class, KvCommand.Put.class, KvCommand.Del.class, KvCommand.Watch.class})
final class KvCommand {
  static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static String s(byte[] b) {
    return new String(b, StandardCharsets.UTF_8);
  }

  /** The range end for KEY under --prefix / --from-key / an explicit end key. */
  static byte[] end(String key, boolean prefix, boolean fromKey, String end) {
    if (prefix) {
      byte[] k = b(key);
      for (int i = k.length - 1; i >= 0; i--) {
        if ((k[i] & 0xff) < 0xff) {
          k[i]++;
          return java.util.Arrays.copyOf(k, i + 1);
        }
      }
      return new byte[] {0};
    }
    if (fromKey) {
      return new byte[] {0};
    }
    return end == null ? new byte[0] : b(end);
  }

  @Command(name = "get", mixinStandardHelpOptions = true, description = "Print keys and values (key, then value, per line).")
  static final class Get implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(index = "0", paramLabel = "KEY") String key;
    @Parameters(index = "1", paramLabel = "END", arity = "0..1", description = "Range end (exclusive).") String end;
    @Option(names = "--prefix", description = "Every key with KEY as prefix.") boolean prefix;
    @Option(names = "--from-key", description = "Every key >= KEY.") boolean fromKey;
    @Option(names = "--rev", paramLabel = "N", description = "Read at revision N.") long rev;
    @Option(names = "--limit", paramLabel = "N", description = "At most N keys.") long limit;
    @Option(names = "--keys-only", description = "Print keys only.") boolean keysOnly;

    @Override
    public Integer call() {
      try (var c = client.connect(); KvStore kv = KvStore.client(c.kernel())) {
        var r = kv.range(c.session(), new Kv.RangeRequest(b(key), end(key, prefix, fromKey, end), limit, rev,
            Kv.SortOrder.NONE, Kv.SortTarget.KEY, keysOnly, false, 0, 0, 0, 0));
        for (Kv.KeyValue k : r.kvs()) {
          System.out.println(s(k.key()));
          if (!keysOnly) {
            System.out.println(s(k.value()));
          }
        }
        return 0;
      }
    }
  }

  @Command(name = "put", mixinStandardHelpOptions = true, description = "Set KEY to VALUE.")
  static final class Put implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(index = "0", paramLabel = "KEY") String key;
    @Parameters(index = "1", paramLabel = "VALUE") String value;
    @Option(names = "--lease", paramLabel = "ID", description = "Attach to this lease (hex, as etcdctl prints it).")
    String lease;

    @Override
    public Integer call() {
      try (var c = client.connect(); KvStore kv = KvStore.client(c.kernel())) {
        long id = lease == null ? 0 : Long.parseUnsignedLong(lease, 16);
        var r = kv.put(c.session(), new Kv.PutRequest(b(key), b(value), id, false, false, false));
        System.out.println("OK (revision " + r.revision() + ")");
        return 0;
      }
    }
  }

  @Command(name = "del", mixinStandardHelpOptions = true, description = "Delete keys; prints how many.")
  static final class Del implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(index = "0", paramLabel = "KEY") String key;
    @Parameters(index = "1", paramLabel = "END", arity = "0..1") String end;
    @Option(names = "--prefix") boolean prefix;
    @Option(names = "--from-key") boolean fromKey;

    @Override
    public Integer call() {
      try (var c = client.connect(); KvStore kv = KvStore.client(c.kernel())) {
        var r = kv.delete(c.session(), new Kv.DeleteRequest(b(key), end(key, prefix, fromKey, end), false));
        System.out.println(r.deleted());
        return 0;
      }
    }
  }

  @Command(name = "watch", mixinStandardHelpOptions = true,
      description = "Print changes as they commit on any node (PUT|DELETE, key, value) until interrupted.")
  static final class Watch implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(index = "0", paramLabel = "KEY") String key;
    @Parameters(index = "1", paramLabel = "END", arity = "0..1") String end;
    @Option(names = "--prefix") boolean prefix;
    @Option(names = "--rev", paramLabel = "N", description = "Replay history from revision N first.") long rev;

    @Override
    public Integer call() throws InterruptedException {
      try (var c = client.connect(); KvStore kv = KvStore.client(c.kernel())) {
        var over = new CountDownLatch(1);
        var exit = new java.util.concurrent.atomic.AtomicInteger(1);
        kv.watches().watch(c.session(), b(key), end(key, prefix, false, end), rev, false, false, false, false,
            new Watches.Sink() {
              @Override
              public void events(List<Kv.Event> events, long revision) {
                for (Kv.Event e : events) {
                  System.out.println(e.type());
                  System.out.println(s(e.kv().key()));
                  if (e.type() == Kv.Event.Type.PUT) {
                    System.out.println(s(e.kv().value()));
                  }
                }
                System.out.flush();
              }

              @Override
              public void compacted(long compactRevision) {
                System.err.println("dbos: watch canceled: revision " + rev + " is compacted (at " + compactRevision + ")");
                over.countDown();
              }

              @Override
              public void denied() {
                System.err.println("dbos: watch canceled: permission denied");
                exit.set(3);
                over.countDown();
              }
            });
        over.await();
        return exit.get();
      }
    }
  }
}
