package org.dbos.bench;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Node;
import org.dbos.kernel.NodeConfig;
import org.dbos.kernel.Session;
import org.dbos.kernel.files.FileHandle;
import org.dbos.kernel.files.FileSystem;
import org.dbos.server.fuse.Mount;

/**
 * Where a small durable file's time and CPU go in DBFS (docs/BENCHMARKS.md, branch fs4): a fresh node,
 * no ext4 beside it, so runs of two builds can alternate quickly on a shared machine.
 *
 * <p>Usage: {@code bench/run FsProfile MODE ARG}, MODE one of
 * <ul>
 *   <li>{@code api N}: create, write 4 KiB, fsync, close through the Java API; first 300 files to warm
 *       up and N by one writer with the time of each call, then N files by 1, 8 and 32 writers with the
 *       CPU per file of this JVM and of the cluster's processes (from /proc);
 *   <li>{@code put N}: the same with {@link FileSystem#createFile}, one call per file;
 *   <li>{@code mount N}: the same through the FUSE mount (FileChannel: create, write, force, close);
 *   <li>{@code tar GLOB}: {@code tar -x} of src.zip's GLOB through the mount, three times.
 * </ul>
 * {@code -Dlog=FILE}: the last round ({@code -DlogRound=K}: round K, from 0) runs with {@code log_min_duration_statement = 0} (and with
 * {@code -Dexplain} also auto_explain, analyzed, with triggers) and the server log is copied to FILE.
 * {@code -Dbytes=N}: files of N bytes (4096; 0 for empty files). Environment {@code PROFILE_SQL}: SQL
 * run on the fresh node first (a schema change to measure). {@code tar} prints the CPU per file of this JVM and of PostgreSQL.
 */
public final class FsProfile {
  /** Writers of each round: 1, 8 and 32, or those of {@code -Dwriters=8,32}. */
  static final int[] WRITERS = Arrays.stream(System.getProperty("writers", "1,8,32").split(","))
      .mapToInt(Integer::parseInt).toArray();

  /** One writer's way to make file {@code i} in directory {@code dir} (a DBFS path). */
  interface SmallFile {
    void make(String dir, int i) throws Exception;
  }

  /** How a writer's directory is made: through the API, or through the mount (which then knows it is new). */
  interface DirMaker {
    void make(String dir) throws Exception;
  }

  public static void main(String[] args) throws Exception {
    String mode = args[0];
    Path dir = Files.createTempDirectory("dbos-profile-");
    try (Node node = Node.boot(NodeConfig.defaults(dir.resolve("node")).withPgPort(FsBench.freePort()).withPoolSize(40))) {
      Kernel kernel = node.kernel();
      Session s = kernel.openSession(Kernel.ADMIN, Duration.ofHours(1));
      FileSystem fs = FileSystem.of(kernel);
      long postmaster = FsBench.postmasterPid(dir.resolve("node"));
      if (System.getenv("PROFILE_SQL") != null) {
        for (String statement : System.getenv("PROFILE_SQL").split(";;")) { // ';;' between statements that must run alone (ALTER SYSTEM)
          sql(kernel, statement);
        }
        freshConnections(kernel);
      }
      byte[] block = new byte[Integer.getInteger("bytes", 4096)];
      new Random(1).nextBytes(block);
      Path mnt = Files.createDirectories(dir.resolve("mnt"));
      try (Mount mount = Mount.mount(kernel, mnt)) {
        if (mode.equals("tar")) {
          Path tar = FsBench.prepareTree(dir, args[1]);
          long files = FsBench.tarFiles(dir);
          for (int i = 0; i < FsBench.TAR_RUNS; i++) {
            logLastRound(kernel, i == FsBench.TAR_RUNS - 1);
            Path into = Files.createDirectories(mnt.resolve("tar" + i));
            Cpu cpu = Cpu.now(postmaster);
            long t0 = System.nanoTime();
            FsBench.run(into, "tar", "-xf", tar.toString());
            System.out.printf("tar -x %d: %.2f s, %s%n", i, FsBench.secs(t0), cpu.perFile(files));
          }
        } else {
          int n = Integer.parseInt(args[1]);
          SmallFile file = switch (mode) {
            case "api" -> (d, i) -> {
              FileHandle h = fs.open(s, d + "/f" + i, FileSystem.O_CREAT | FileSystem.O_EXCL | FileSystem.O_WRONLY, 0644);
              byte[] mine = FsBench.distinct(block.clone(), d.hashCode(), 0, i);
              fs.write(s, h, 0, mine, 0, mine.length);
              fs.fsync(s, h);
              fs.close(h);
            };
            case "put" -> (d, i) -> fs.createFile(s, d + "/f" + i, 0644, FsBench.distinct(block.clone(), d.hashCode(), 0, i));
            case "mount" -> (d, i) -> {
              try (FileChannel ch = FileChannel.open(mnt.resolve(d.substring(1)).resolve("f" + i),
                  StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(FsBench.distinct(block.clone(), d.hashCode(), 0, i)));
                ch.force(true);
              }
            };
            default -> throw new IllegalArgumentException("mode: api, put, mount or tar");
          };
          if (mode.equals("api")) {
            perCall(fs, s, "/warm", 300, block);
            perCall(fs, s, "/one", n, block);
          }
          DirMaker mkdir = mode.equals("mount") ? d -> Files.createDirectory(mnt.resolve(d.substring(1)))
              : d -> fs.mkdir(s, d, 0755);
          for (int k = 0; k < WRITERS.length; k++) {
            logLastRound(kernel, k == Integer.getInteger("logRound", WRITERS.length - 1));
            writers(kernel, postmaster, k, WRITERS[k], n, mkdir, file);
          }
        }
      }
      String log = System.getProperty("log");
      if (log != null) {
        Files.copy(dir.resolve("node/pg.log"), Path.of(log), StandardCopyOption.REPLACE_EXISTING);
      }
    } finally {
      FsBench.run(Path.of("/"), "rm", "-rf", dir.toString());
    }
  }

  /** With -Dlog, turns statement logging (and with -Dexplain auto_explain) on before the last round. */
  static void logLastRound(Kernel kernel, boolean last) throws Exception {
    if (!last || System.getProperty("log") == null) {
      return;
    }
    sql(kernel, "ALTER SYSTEM SET log_min_duration_statement = 0");
    if (System.getProperty("explain") != null) {
      for (String setting : new String[] {"session_preload_libraries = 'auto_explain'", "auto_explain.log_min_duration = 0",
          "auto_explain.log_analyze = on", "auto_explain.log_triggers = on", "auto_explain.log_nested_statements = on"}) {
        sql(kernel, "ALTER SYSTEM SET " + setting);
      }
    }
    sql(kernel, "SELECT pg_reload_conf()");
    freshConnections(kernel);
    Thread.sleep(300);
  }

  /** Retires the pool's connections, so that settings only a session's start reads (session_preload_libraries, auto_explain) hold. */
  static void freshConnections(Kernel kernel) {
    ((com.zaxxer.hikari.HikariDataSource) kernel.database().dataSource()).getHikariPoolMXBean().softEvictConnections();
  }

  static void sql(Kernel kernel, String statement) throws Exception {
    try (var c = kernel.database().connection(); var st = c.createStatement()) {
      st.execute(statement);
    }
  }

  /** One writer through the API, timing the calls. */
  static void perCall(FileSystem fs, Session s, String d, int n, byte[] block) {
    fs.mkdir(s, d, 0755);
    long open = 0;
    long write = 0;
    long sync = 0;
    long t0 = System.nanoTime();
    for (int i = 0; i < n; i++) {
      long a = System.nanoTime();
      FileHandle h = fs.open(s, d + "/f" + i, FileSystem.O_CREAT | FileSystem.O_EXCL | FileSystem.O_WRONLY, 0644);
      long b = System.nanoTime();
      fs.write(s, h, 0, block, 0, block.length);
      long c = System.nanoTime();
      fs.fsync(s, h);
      long e = System.nanoTime();
      fs.close(h);
      open += b - a;
      write += c - b;
      sync += e - c;
    }
    System.out.printf("%s, one writer, %d files: %.3f ms per file (open %.3f, write %.3f, fsync %.3f)%n", d, n,
        (System.nanoTime() - t0) / 1e6 / n, open / 1e6 / n, write / 1e6 / n, sync / 1e6 / n);
  }

  /** The group commit's count of groups, their total size and the failed groups when the last round ended (GroupCreate). */
  static final long[] groupsBefore = new long[3];

  /** Round {@code round}: {@code n} files by {@code writers} writers, each in a directory of its own; files/s and CPU per file. */
  static void writers(Kernel kernel, long postmaster, int round, int writers, int n, DirMaker mkdir, SmallFile file) throws Exception {
    Cpu cpu = Cpu.now(postmaster);
    long[] wal = wal(kernel);
    double rate = FsBench.smallFiles(writers, n, t -> {
      String d = "/r" + round + "w" + writers + "-" + t; // a writer count may come twice (-Dwriters=32,32)
      mkdir.make(d);
      return i -> file.make(d, i);
    });
    int files = n / writers * writers;
    var groups = kernel.meters().find("dbos.fs.create.group").summary();
    long count = groups == null ? 0 : groups.count();
    double total = groups == null ? 0 : groups.totalAmount();
    long[] walAfter = wal(kernel);
    if (System.getenv("PROFILE_IO") != null) {
      try (var c = kernel.database().connection(); var st = c.createStatement();
           var rs = st.executeQuery("SELECT context, writes, write_time, fsyncs, fsync_time FROM pg_stat_io WHERE object = 'wal' AND (writes > 0 OR fsyncs > 0)")) {
        while (rs.next()) {
          System.out.printf("  wal io %s: writes %d (%.0f ms), fsyncs %d (%.0f ms)%n", rs.getString(1), rs.getLong(2), rs.getDouble(3), rs.getLong(4), rs.getDouble(5));
        }
      }
    }
    var failed = kernel.meters().find("dbos.fs.create.group.failed").counter();
    long failures = failed == null ? 0 : (long) failed.count();
    System.out.printf("%2d writers: %.0f files/s, %s, %.1f files per group (%d groups failed), WAL %.0f bytes and %.2f full pages per file%n",
        writers, rate, cpu.perFile(files),
        count == groupsBefore[0] ? 0 : (total - groupsBefore[1]) / (count - groupsBefore[0]), failures - groupsBefore[2],
        (double) (walAfter[0] - wal[0]) / files, (double) (walAfter[1] - wal[1]) / files);
    groupsBefore[0] = count;
    groupsBefore[1] = (long) total;
    groupsBefore[2] = failures;
  }

  /**
   * The cluster's WAL bytes so far (its insert position: exact at once) and full-page images
   * (pg_stat_wal, which a backend updates only every second or so: short rounds under-count them).
   */
  static long[] wal(Kernel kernel) throws Exception {
    try (var c = kernel.database().connection(); var st = c.createStatement();
         var rs = st.executeQuery("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint, wal_fpi FROM pg_stat_wal")) {
      rs.next();
      return new long[] {rs.getLong(1), rs.getLong(2)};
    }
  }

  /** The CPU this JVM and the cluster's PostgreSQL had used when read, to share among the files made since. */
  record Cpu(long postmaster, long jvm, long postgres) {
    private static final com.sun.management.OperatingSystemMXBean OS =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

    static Cpu now(long postmaster) throws Exception {
      return new Cpu(postmaster, OS.getProcessCpuTime(), clusterCpu(postmaster));
    }

    /** "CPU per file: JVM … ms, PostgreSQL … ms" over {@code files} made since this reading. */
    String perFile(long files) throws Exception {
      Cpu now = now(postmaster);
      return String.format("CPU per file: JVM %.3f ms, PostgreSQL %.3f ms",
          (now.jvm - jvm) / 1e6 / files, (now.postgres - postgres) / 1e6 / files);
    }
  }

  /** CPU time (ns) of the postmaster and its children, live and reaped, from /proc (clock ticks of 10 ms). */
  static long clusterCpu(long postmaster) throws Exception {
    long ticks = 0;
    try (var procs = Files.list(Path.of("/proc"))) {
      for (Path p : procs.toList()) {
        String pid = p.getFileName().toString();
        if (!pid.chars().allMatch(Character::isDigit)) {
          continue;
        }
        try {
          String st = Files.readString(p.resolve("stat"));
          String[] f = st.substring(st.lastIndexOf(')') + 2).split(" ");
          if (Long.parseLong(pid) == postmaster || Long.parseLong(f[1]) == postmaster) {
            ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]);
          }
          if (Long.parseLong(pid) == postmaster) { // and the children it reaped (autovacuum workers, …)
            ticks += Long.parseLong(f[13]) + Long.parseLong(f[14]);
          }
        } catch (java.io.IOException | RuntimeException gone) {
          // the process ended meanwhile
        }
      }
    }
    return ticks * 10_000_000L;
  }
}
