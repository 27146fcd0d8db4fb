package org.dbos.bench;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Node;
import org.dbos.kernel.NodeConfig;
import org.dbos.kernel.Session;
import org.dbos.kernel.files.FileHandle;
import org.dbos.kernel.files.FileSystem;
import org.dbos.server.fuse.Mount;

/**
 * DBFS against the local disk in one run: ext4 directly, ext4 behind a FUSE passthrough (bindfs, to
 * separate FUSE's own cost) and DBFS through its FUSE mount, all driven by the same code (and the same
 * `tar`); DBFS's Java API is measured beside them. Then sequential throughput per chunk size through
 * the API, which is how the default chunk size was chosen. The small-file workload (create, write
 * 4 KiB, fsync, close) runs with 1, 8 and 32 threads, each in its own directory: one fsync at a time,
 * and enough at once for the file system's (or PostgreSQL's) group commit to share flushes. Through
 * the API that workload is one system call per file, {@link FileSystem#createFile}. The four targets
 * take their small-file rounds in turn, as they take {@code tar -x}'s (see {@link #smallFilesInTurn}),
 * and with them the API's creates of empty files ({@link #NO_DATA}). Beside them, with
 * the same 1, 8 and 32 callers, PostgreSQL's bare durable single-row commits on DBFS's database: the
 * ceiling of any design that commits once per file. {@code tar -x} runs on the three targets in turn,
 * an unmeasured warm-up and three rounds, and reports each one's median, so that the shared machine's
 * load falls on all alike.
 *
 * <p>Usage: {@code java -cp ... org.dbos.bench.FsBench [small-files] [seq-MiB] [random-reads] [tree-glob]}
 * (defaults 3200, 1024, 2000, *: the sizes, a 1 GiB file and the whole src.zip, 15,224 files;
 * small-files is the files of each round: see {@link #SMALL_RUNS}). The
 * embedded PostgreSQL runs with fsync on, with 40 connections so 32 writers need not queue for one.
 * Reads on ext4 and bindfs come from the page cache (nothing is dropped: the machine is shared);
 * reads through DBFS's mount go to the database (FUSE drops its page cache at open).
 */
public final class FsBench {
  static final int TAR_RUNS = 3;
  static final String TAR = "tar -x, median of " + TAR_RUNS + " (s)";
  /** Small-file writers at once, each in its own directory: one, and enough for group commit to matter. */
  static final int[] THREADS = {1, 8, 32};
  /**
   * Measured passes of the small-file rounds, after an unmeasured one: the median per target and
   * writer count is reported. The unmeasured pass runs every writer count, because a JVM's first
   * thousands of calls of a path run while its JIT compiles them (C2 compiled the group commit's
   * statement builder during a 1-writer round that followed a warm-up by 8 writers only), and a
   * server's steady state is what the comparison is about; ext4 and bindfs warm their caches in it alike.
   */
  static final int SMALL_RUNS = 3;
  /** Bytes of each small file. */
  static final int SMALL_FILE = 4096;
  /**
   * The API's creates of empty files, in the same rounds: what a create costs with no chunk and no
   * blob to write (its audit record, inode and entry, one durable commit per group). No way of storing
   * a small file's bytes can make DBFS faster than this.
   */
  static final String NO_DATA = "api-nodata";
  static final Duration COMMIT_TIME = Duration.ofSeconds(3);
  private static final Path SRC_ZIP = Path.of(System.getProperty("java.home"), "lib", "src.zip");

  public static void main(String[] args) throws Exception {
    int smallFiles = args.length > 0 ? Integer.parseInt(args[0]) : 3200;
    int seqMiB = args.length > 1 ? Integer.parseInt(args[1]) : 1024;
    int randomReads = args.length > 2 ? Integer.parseInt(args[2]) : 2000;
    String tree = args.length > 3 ? args[3] : "*";
    Path dir = Files.createTempDirectory("dbos-bench-fs-");
    Path tar = prepareTree(dir, tree);
    Path ext4 = Files.createDirectories(dir.resolve("ext4"));
    Path bindSrc = Files.createDirectories(dir.resolve("bind-src"));
    Path bind = Files.createDirectories(dir.resolve("bindfs"));
    Path dbfs = Files.createDirectories(dir.resolve("dbfs"));
    run(dir, "bindfs", "--multithreaded", bindSrc.toString(), bind.toString()); // its default is one thread
    Map<String, Map<String, Double>> results = new LinkedHashMap<>();
    try (Node node = Node.boot(NodeConfig.defaults(dir.resolve("node")).withPgPort(freePort()).withPoolSize(40))) {
      Kernel kernel = node.kernel();
      Session admin = kernel.openSession(Kernel.ADMIN, Duration.ofHours(1));
      FileSystem fs = FileSystem.of(kernel);
      try (Mount mount = Mount.mount(kernel, dbfs)) {
        var targets = List.of(Map.entry("ext4", ext4), Map.entry("bindfs", bind), Map.entry("dbfs-fuse", dbfs));
        var writers = new LinkedHashMap<String, SmallFileWriter>();
        targets.forEach(t -> writers.put(t.getKey(), posixWriter(t.getValue())));
        writers.put("dbfs-api", apiWriter(fs, admin, "/api", SMALL_FILE));
        writers.put(NO_DATA, apiWriter(fs, admin, "/nodata", 0));
        System.out.println("measuring small files on each in turn …");
        smallFilesInTurn(writers, smallFiles, results);
        for (var target : targets) {
          System.out.println("measuring " + target.getKey() + " …");
          results.get(target.getKey()).putAll(measurePosix(target.getValue(), seqMiB, randomReads));
        }
        System.out.println("measuring tar -x on each in turn …");
        tarInTurn(targets, tar, results, postmasterPid(dir.resolve("node")));
      }
      System.out.println("measuring dbfs-api …");
      results.get("dbfs-api").putAll(measureApi(fs, admin, seqMiB, randomReads));
      System.out.println("measuring PostgreSQL's durable commits …");
      try (var c = kernel.database().connection(); var st = c.createStatement()) {
        st.execute("CHECKPOINT"); // the workloads' dirty pages written first: the commits do not queue behind them
      }
      var commits = new double[THREADS.length];
      var rows = new double[THREADS.length];
      for (int i = 0; i < THREADS.length; i++) {
        commits[i] = DurableCommits.perSecond(kernel.database()::connection, THREADS[i], COMMIT_TIME);
        rows[i] = DurableCommits.perSecond(kernel.database()::connection, THREADS[i], COMMIT_TIME, SMALL_FILE);
      }
      print(results, smallFiles, seqMiB, randomReads, tree, tarFiles(dir));
      printCommitCeiling(results, commits, rows);
      System.out.println();
      chunkSizes(kernel, admin, Math.min(seqMiB, 128));
    } finally {
      run(dir, "umount", bind.toString());
      run(dir, "rm", "-rf", dir.toString());
    }
  }

  // ---- the same workload through the POSIX interface (Java NIO, and tar) ----

  /**
   * {@code tar -x} of the tree on every target in turn, {@value #TAR_RUNS} rounds, the median per target:
   * the machine is shared, and its load, which moves bindfs's time by half, then falls on all alike.
   * A first round on each is not measured: it compiles the mount's code for this workload, which a
   * mount that has been running (and EtcdBench's warm-up) has done already.
   */
  static void tarInTurn(List<Map.Entry<String, Path>> targets, Path tar, Map<String, Map<String, Double>> results,
                        long postmaster) throws Exception {
    long files = Math.max(1, tarFiles(tar.getParent()));
    var secs = new LinkedHashMap<String, double[]>();
    for (int i = -1; i < TAR_RUNS; i++) {
      for (var target : targets) {
        Path into = Files.createDirectories(target.getValue().resolve(i < 0 ? "tar-warm-up" : "tar" + i));
        // the last extraction's dirty pages are written out first, not during this one's timing
        run(target.getValue(), "sync");
        System.out.printf("%tT tar -x on %s, %s%n", new java.util.Date(), target.getKey(),
            i < 0 ? "warm-up" : "round " + (i + 1));
        var cpu = FsProfile.Cpu.now(postmaster);
        long t0 = System.nanoTime();
        run(into, "tar", "-xf", tar.toString());
        if (i >= 0) {
          secs.computeIfAbsent(target.getKey(), k -> new double[TAR_RUNS])[i] = secs(t0);
        }
        if (target.getKey().equals("dbfs-fuse")) { // the mount runs in this JVM
          System.out.printf("  %.2f s, %s%n", secs(t0), cpu.perFile(files));
        }
      }
    }
    secs.forEach((name, s) -> {
      System.out.printf("tar -x rounds on %s (s): %s%n", name,
          String.join(" ", Arrays.stream(s).mapToObj(x -> String.format("%.2f", x)).toList()));
      Arrays.sort(s);
      results.get(name).put(TAR, s[TAR_RUNS / 2]);
    });
    for (var target : targets) {
      run(target.getValue(), "sh", "-c", "rm -rf tar*");
    }
  }

  /**
   * The small-file rounds: for each pass (an unmeasured one, then {@value #SMALL_RUNS}), for each
   * writer count, every target in turn, so that a burst of the shared machine's load falls on one
   * round of each, not on one target's rounds; then the median per target and writer count. Every
   * round writes {@code files} new files, in directories of its own.
   */
  static void smallFilesInTurn(Map<String, SmallFileWriter> targets, int files, Map<String, Map<String, Double>> results)
      throws Exception {
    var rates = new LinkedHashMap<String, double[]>();
    for (int pass = -1; pass < SMALL_RUNS; pass++) {
      for (int threads : THREADS) {
        for (var target : targets.entrySet()) {
          int round = (pass + 1) * 100 + threads; // names the round's directories and stamps its files
          double rate = smallFiles(threads, files, t -> target.getValue().in(round, t));
          if (pass >= 0) {
            rates.computeIfAbsent(target.getKey() + " " + threads, k -> new double[SMALL_RUNS])[pass] = rate;
          }
        }
      }
    }
    for (String target : targets.keySet()) {
      var r = results.computeIfAbsent(target, k -> new LinkedHashMap<>());
      for (int threads : THREADS) {
        double[] x = rates.get(target + " " + threads);
        System.out.printf("small files/s on %s, %d writers: %s%n", target, threads,
            String.join(" ", Arrays.stream(x).mapToObj(v -> String.format("%.0f", v)).toList()));
        Arrays.sort(x);
        r.put(smallMetric(threads), x[SMALL_RUNS / 2]);
      }
      r.put(TAR, Double.NaN); // measured by tarInTurn; the row keeps its place
    }
  }

  /** Small files through the POSIX interface under {@code root}: create, write, fsync, close. */
  static SmallFileWriter posixWriter(Path root) {
    byte[] block = new byte[SMALL_FILE];
    new Random(1).nextBytes(block);
    return (round, t) -> {
      Path small = Files.createDirectories(root.resolve("small" + round + "-" + t));
      byte[] mine = block.clone();
      return i -> {
        try (FileChannel ch = FileChannel.open(small.resolve("f" + i), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
          ch.write(ByteBuffer.wrap(distinct(mine, round, t, i)));
          ch.force(true);
        }
      };
    };
  }

  /** The same through the Java API, files of {@code bytes} under {@code top}: create, write, fsync and close are one call. */
  static SmallFileWriter apiWriter(FileSystem fs, Session s, String top, int bytes) {
    fs.mkdir(s, top, 0755);
    byte[] block = new byte[bytes];
    new Random(1).nextBytes(block);
    return (round, t) -> {
      String dir = top + "/small" + round + "-" + t;
      fs.mkdir(s, dir, 0755);
      byte[] mine = block.clone();
      return i -> fs.createFile(s, dir + "/f" + i, 0644, distinct(mine, round, t, i));
    };
  }

  /** Sequential write and read, and random reads, of one file through the POSIX interface under {@code root}. */
  static Map<String, Double> measurePosix(Path root, int seqMiB, int randomReads) throws Exception {
    var r = new LinkedHashMap<String, Double>();
    run(root, "sh", "-c", "rm -rf small*"); // the small-file rounds' trees, out of the sequential file's way
    long t0;

    Path big = root.resolve("big");
    byte[] mb = new byte[1 << 20];
    new Random(2).nextBytes(mb);
    t0 = System.nanoTime();
    try (FileChannel ch = FileChannel.open(big, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      for (int i = 0; i < seqMiB; i++) {
        ch.write(ByteBuffer.wrap(mb));
      }
      ch.force(true);
    }
    r.put("seq write+fsync (MiB/s)", seqMiB / secs(t0));

    t0 = System.nanoTime();
    try (FileChannel ch = FileChannel.open(big, StandardOpenOption.READ)) {
      ByteBuffer b = ByteBuffer.allocateDirect(1 << 20);
      while (ch.read(b) > 0) {
        b.clear();
      }
    }
    r.put("seq read (MiB/s)", seqMiB / secs(t0));

    Random rnd = new Random(3);
    t0 = System.nanoTime();
    try (FileChannel ch = FileChannel.open(big, StandardOpenOption.READ)) {
      ByteBuffer b = ByteBuffer.allocateDirect(4096);
      for (int i = 0; i < randomReads; i++) {
        b.clear();
        ch.read(b, (long) rnd.nextInt(seqMiB * 256) * 4096);
      }
    }
    r.put("random 4 KiB reads (reads/s)", randomReads / secs(t0));
    run(root, "sh", "-c", "rm -rf small* big");
    return r;
  }

  // ---- the same workload through the Java API (no FUSE, no kernel page cache) ----

  static Map<String, Double> measureApi(FileSystem fs, Session s, int seqMiB, int randomReads) {
    var r = new LinkedHashMap<String, Double>();
    byte[] buf = new byte[4 << 20];
    new Random(2).nextBytes(buf);
    long t0 = System.nanoTime();
    FileHandle h = fs.create(s, "/api/big", 0644);
    for (int i = 0; i < seqMiB; i += 4) {
      fs.write(s, h, (long) i << 20, buf, 0, buf.length);
    }
    fs.close(h);
    r.put("seq write+fsync (MiB/s)", seqMiB / secs(t0));
    t0 = System.nanoTime();
    h = fs.open(s, "/api/big", FileSystem.O_RDONLY, 0);
    for (long off = 0; ; off += buf.length) {
      if (fs.read(s, h, off, buf.length).length < buf.length) {
        break;
      }
    }
    r.put("seq read (MiB/s)", seqMiB / secs(t0));
    Random rnd = new Random(3);
    t0 = System.nanoTime();
    for (int i = 0; i < randomReads; i++) {
      fs.read(s, h, (long) rnd.nextInt(seqMiB * 256) * 4096, 4096);
    }
    r.put("random 4 KiB reads (reads/s)", randomReads / secs(t0));
    fs.close(h);
    return r;
  }

  /**
   * {@code block} stamped, in its first 12 bytes, with the round, the writer and the file: every small
   * file's content differs, so DBFS stores each (its chunks are content-addressed: identical files
   * would share one blob, which ext4 cannot do).
   */
  static byte[] distinct(byte[] block, int round, int writer, int file) {
    if (block.length > 0) {
      ByteBuffer.wrap(block).putInt(round).putInt(writer).putInt(file);
    }
    return block;
  }

  /** Writer {@code thread}'s work in round {@code round}: its directory made, then file {@code i} of it created, written, fsynced and closed. */
  interface SmallFileWriter {
    FileWriter in(int round, int thread) throws Exception;
  }

  interface FileWriter {
    void write(int i) throws Exception;
  }

  static String smallMetric(int threads) {
    return "small create+write+fsync, " + threads + (threads == 1 ? " thread" : " threads") + " (files/s)";
  }

  /** A writer's files of one round, from thread {@code t}. */
  interface RoundWriter {
    FileWriter in(int t) throws Exception;
  }

  /** {@code files} small files written by {@code threads} threads at once (each its share, in its own directory). */
  static double smallFiles(int threads, int files, RoundWriter writer) throws Exception {
    var writers = new ArrayList<FileWriter>();
    for (int t = 0; t < threads; t++) {
      writers.add(writer.in(t));
    }
    int each = files / threads;
    var start = new CountDownLatch(1);
    try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
      var done = new ArrayList<Future<?>>();
      for (FileWriter w : writers) {
        done.add(pool.submit(() -> {
          start.await();
          for (int i = 0; i < each; i++) {
            w.write(i);
          }
          return null;
        }));
      }
      long t0 = System.nanoTime();
      start.countDown();
      for (Future<?> f : done) {
        f.get();
      }
      return each * threads / secs(t0);
    }
  }

  /** Sequential write and read through the API per chunk size: how DEFAULT_CHUNK_SIZE was chosen. */
  static void chunkSizes(Kernel kernel, Session s, int mib) {
    System.out.printf("chunk size (API, %d MiB file, 4 MiB calls)   write MiB/s   read MiB/s   4 KiB random reads/s%n", mib);
    byte[] buf = new byte[4 << 20];
    new Random(4).nextBytes(buf);
    for (int cs : new int[] {64 << 10, 256 << 10, 1 << 20}) {
      FileSystem fs = new FileSystem(kernel, cs);
      String p = "/chunk" + cs;
      long t0 = System.nanoTime();
      FileHandle h = fs.open(s, p, FileSystem.O_CREAT | FileSystem.O_TRUNC | FileSystem.O_RDWR, 0644);
      for (int i = 0; i < mib; i += 4) {
        fs.write(s, h, (long) i << 20, buf, 0, buf.length);
      }
      double w = mib / secs(t0);
      t0 = System.nanoTime();
      for (long off = 0; off < (long) mib << 20; off += buf.length) {
        fs.read(s, h, off, buf.length);
      }
      double rd = mib / secs(t0);
      Random rnd = new Random(5);
      t0 = System.nanoTime();
      for (int i = 0; i < 500; i++) {
        fs.read(s, h, (long) rnd.nextInt(mib * 256) * 4096, 4096);
      }
      double rr = 500 / secs(t0);
      fs.close(h);
      System.out.printf("  %7d KiB %35.1f %12.1f %20.0f%n", cs >> 10, w, rd, rr);
    }
  }

  static void print(Map<String, Map<String, Double>> results, int smallFiles, int seqMiB, int randomReads, String tree,
                    long files) {
    System.out.printf("%nDBFS vs ext4 vs bindfs(ext4): %d small files, tar of %d files (%s), %d MiB sequential, %d random reads%n",
        smallFiles, files, tree, seqMiB, randomReads);
    List<String> names = new ArrayList<>(results.keySet());
    System.out.printf("%-48s", "");
    names.forEach(n -> System.out.printf("%12s", n));
    System.out.printf("%14s%14s%n", "fuse/ext4", "fuse/bindfs");
    for (String metric : results.get("ext4").keySet()) {
      System.out.printf("%-48s", metric);
      for (String n : names) {
        double v = results.get(n).getOrDefault(metric, Double.NaN);
        System.out.printf("%12s", Double.isNaN(v) ? "-" : String.format(v < 10 ? "%.2f" : "%.0f", v));
      }
      double d = results.get("dbfs-fuse").get(metric);
      System.out.printf("%14.2f%14.2f%n", d / results.get("ext4").get(metric), d / results.get("bindfs").get(metric));
    }
    System.out.println("(ratios > 1 are better for DBFS except for tar -x, which is seconds)");
  }

  /**
   * The small-file rates beside PostgreSQL's durable commit rate with as many callers, bare and with a
   * small file's bytes in each commit.
   */
  static void printCommitCeiling(Map<String, Map<String, Double>> results, double[] commits, double[] rows) {
    System.out.printf("%nceiling of one durable commit per file: bare one-row INSERT + COMMIT on DBFS's PostgreSQL, %d s each%n",
        COMMIT_TIME.toSeconds());
    System.out.printf("%-40s", "writers");
    Arrays.stream(THREADS).forEach(t -> System.out.printf("%12d", t));
    System.out.printf("%n%-40s", "PostgreSQL durable commits/s");
    Arrays.stream(commits).forEach(c -> System.out.printf("%12.0f", c));
    System.out.printf("%n%-40s", "the same, each with 4 KiB of bytes");
    Arrays.stream(rows).forEach(c -> System.out.printf("%12.0f", c));
    for (String target : results.keySet()) {
      System.out.printf("%n%-40s", target + " small files/s");
      for (int t : THREADS) {
        System.out.printf("%12.0f", results.get(target).get(smallMetric(t)));
      }
    }
    System.out.printf("%n%-40s", "commits/s / ext4 files/s");
    for (int i = 0; i < THREADS.length; i++) {
      System.out.printf("%12.2f", commits[i] / results.get("ext4").get(smallMetric(THREADS[i])));
    }
    System.out.printf("%n%-40s", "with 4 KiB / ext4 files/s");
    for (int i = 0; i < THREADS.length; i++) {
      System.out.printf("%12.2f", rows[i] / results.get("ext4").get(smallMetric(THREADS[i])));
    }
    for (String target : List.of("dbfs-api", NO_DATA)) {
      System.out.printf("%n%-40s", target + " / ext4 files/s");
      for (int t : THREADS) {
        System.out.printf("%12.2f", results.get(target).get(smallMetric(t)) / results.get("ext4").get(smallMetric(t)));
      }
    }
    System.out.println();
  }

  static Path prepareTree(Path dir, String glob) throws Exception {
    Path src = Files.createDirectories(dir.resolve("src"));
    run(src, "unzip", "-q", SRC_ZIP.toString(), glob);
    Path tar = dir.resolve("tree.tar");
    run(src, "tar", "-cf", tar.toString(), ".");
    return tar;
  }

  /** The embedded PostgreSQL's postmaster of the node in {@code nodeDir}. */
  static long postmasterPid(Path nodeDir) throws IOException {
    return Long.parseLong(Files.readAllLines(nodeDir.resolve("pg/postmaster.pid")).getFirst().trim());
  }

  static long tarFiles(Path dir) throws IOException {
    try (var s = Files.walk(dir.resolve("src"))) {
      return s.filter(Files::isRegularFile).count();
    }
  }

  static double secs(long t0) {
    return (System.nanoTime() - t0) / 1e9;
  }

  static void run(Path cwd, String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).directory(cwd.toFile()).inheritIO().start();
    if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0) {
      throw new IllegalStateException(String.join(" ", cmd) + " failed with exit " + p.exitValue());
    }
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }
}
