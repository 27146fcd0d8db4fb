package org.dbos.server.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.concurrent.Callable;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.files.CheckReport;
import org.dbos.kernel.files.DirEntry;
import org.dbos.kernel.files.FileSystem;
import org.dbos.kernel.files.Names;
import org.dbos.kernel.files.Purged;
import org.dbos.kernel.files.Stat;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** `dbos fs …`: DBFS from the command line, without a mount. Paths are absolute DBFS paths. */
@Command(name = "fs", mixinStandardHelpOptions = true,
    description = "Files in DBFS, the file system in the OS database (paths are absolute, e.g. /home/alice).",
    subcommands = {FsCommand.Ls.class, FsCommand.StatCmd.class, FsCommand.Cat.class, FsCommand.Put.class,
        FsCommand.Get.class, FsCommand.Mkdir.class, FsCommand.Rm.class, FsCommand.Mv.class, FsCommand.Du.class,
        FsCommand.Find.class, FsCommand.Check.class, FsCommand.Purge.class})
final class FsCommand {
  /** Copies at least this large show a progress bar. */
  static final long PROGRESS_BYTES = 8L << 20;
  static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm").withZone(ZoneId.systemDefault());

  /** A subcommand: connects, runs, closes. */
  abstract static class Base implements Callable<Integer> {
    @Mixin ClientOptions client;

    @Override
    public Integer call() throws Exception {
      try (var c = client.connect()) {
        return run(FileSystem.of(c.kernel()), c.session());
      }
    }

    abstract int run(FileSystem fs, Session s) throws Exception;
  }

  /**
   * Prints {@code line} with each name in it as its bytes, as ls and find write names to a pipe: what
   * is printed is then exactly the name, where an escape such as \xe9 could also be four characters
   * of one. (The line is in {@link Names} form: UTF-8, the other bytes as U+DC00 + byte.)
   */
  static void println(String line) {
    System.out.writeBytes(Names.bytes(line + "\n"));
  }

  static String child(String dir, String name) {
    return dir.endsWith("/") ? dir + name : dir + "/" + name;
  }

  static String mode(Stat st) {
    char type = switch (st.kind()) {
      case FILE -> '-';
      case DIRECTORY -> 'd';
      case SYMLINK -> 'l';
      case FIFO -> 'p';
      case SOCKET -> 's';
    };
    return type + PosixFilePermissions.toString(PosixFilePermissions.fromString(rwx(st.mode())));
  }

  private static String rwx(int mode) {
    var sb = new StringBuilder();
    for (int shift = 6; shift >= 0; shift -= 3) {
      int b = mode >> shift;
      sb.append((b & 4) != 0 ? 'r' : '-').append((b & 2) != 0 ? 'w' : '-').append((b & 1) != 0 ? 'x' : '-');
    }
    return sb.toString();
  }

  /** Visits {@code path} and, for a directory, everything below it (depth first, parents first). */
  static void walk(FileSystem fs, Session s, String path, Stat st, java.util.function.BiConsumer<String, Stat> visit) {
    visit.accept(path, st);
    if (st.isDirectory()) {
      for (DirEntry e : fs.list(s, path)) {
        walk(fs, s, child(path, e.name()), e.stat(), visit);
      }
    }
  }

  @Command(name = "ls", mixinStandardHelpOptions = true, description = "List directories (or name files).")
  static final class Ls extends Base {
    @Option(names = "-l", description = "Long format: mode, links, uid, gid, size, modified, name.")
    boolean longFormat;

    @Parameters(paramLabel = "PATH", defaultValue = "/", arity = "0..*")
    List<String> paths;

    @Override
    int run(FileSystem fs, Session s) {
      for (String p : paths) {
        Stat st = fs.stat(s, p, true);
        if (paths.size() > 1 && st.isDirectory()) {
          println(p + ":");
        }
        List<DirEntry> entries = st.isDirectory() ? fs.list(s, p) : List.of(new DirEntry(
            Names.bytes(p.substring(p.lastIndexOf('/') + 1)), st));
        for (DirEntry e : entries) {
          if (longFormat) {
            Stat es = e.stat();
            String link = es.isSymlink() ? " -> " + fs.readlink(s, st.isDirectory() ? child(p, e.name()) : p) : "";
            println("%s %3d %5d %5d %12d %s %s%s".formatted(mode(es), es.nlink(), es.uid(), es.gid(), es.size(),
                TIME.format(es.mtime()), e.name(), link));
          } else {
            println(e.name());
          }
        }
      }
      return 0;
    }
  }

  @Command(name = "stat", mixinStandardHelpOptions = true, description = "Show a file's attributes (symlinks not followed).")
  static final class StatCmd extends Base {
    @Parameters(paramLabel = "PATH", arity = "1..*")
    List<String> paths;

    @Override
    int run(FileSystem fs, Session s) {
      for (String p : paths) {
        Stat st = fs.stat(s, p, false);
        println("  File: %s%n  Size: %d  Kind: %s  Inode: %d  Links: %d  Version: %d%n"
                .formatted(p, st.size(), st.kind(), st.ino(), st.nlink(), st.version())
            + "Access: (%04o/%s)  Uid: %d  Gid: %d%nModify: %s%nChange: %s".formatted(st.mode(), mode(st), st.uid(),
                st.gid(), st.mtime(), st.ctime()));
      }
      return 0;
    }
  }

  @Command(name = "cat", mixinStandardHelpOptions = true, description = "Print files to standard output.")
  static final class Cat extends Base {
    @Parameters(paramLabel = "PATH", arity = "1..*")
    List<String> paths;

    @Override
    int run(FileSystem fs, Session s) throws IOException {
      for (String p : paths) {
        try (InputStream in = fs.openInput(s, p)) {
          in.transferTo(System.out);
        }
      }
      System.out.flush();
      return 0;
    }
  }

  @Command(name = "put", mixinStandardHelpOptions = true, description = "Copy a local file (or with -r a directory) into DBFS.")
  static final class Put extends Base {
    @Option(names = "-r", description = "Copy directories recursively.")
    boolean recursive;

    @Parameters(index = "0", paramLabel = "LOCAL")
    String local;

    @Parameters(index = "1", paramLabel = "PATH", description = "Target; into it if it is a directory.")
    String target;

    @Override
    int run(FileSystem fs, Session s) throws IOException {
      Path from = LocalPaths.of(local);
      String to = target;
      try {
        if (fs.stat(s, target, true).isDirectory()) {
          to = child(target, LocalPaths.name(from));
        }
      } catch (SyscallException e) {
        // a new name
      }
      put(fs, s, from, to);
      return 0;
    }

    private void put(FileSystem fs, Session s, Path from, String to) throws IOException {
      int mode = Files.getPosixFilePermissions(from).stream().mapToInt(p -> 1 << (8 - p.ordinal())).sum();
      if (Files.isDirectory(from, LinkOption.NOFOLLOW_LINKS)) {
        if (!recursive) {
          throw SyscallException.invalid(from + " is a directory (use -r)");
        }
        fs.mkdir(s, to, mode);
        try (var list = Files.list(from)) {
          for (Path p : list.sorted().toList()) {
            put(fs, s, p, child(to, LocalPaths.name(p)));
          }
        }
        return;
      }
      if (Files.isSymbolicLink(from)) {
        fs.symlink(s, LocalPaths.text(Files.readSymbolicLink(from)), to);
        return;
      }
      long size = Files.size(from);
      try (InputStream in = progress(Files.newInputStream(from), "put " + Names.shown(LocalPaths.name(from)), size);
           OutputStream out = fs.openOutput(s, to, mode)) {
        in.transferTo(out);
      }
    }
  }

  static InputStream progress(InputStream in, String task, long size) {
    if (size < PROGRESS_BYTES) {
      return in;
    }
    return ProgressBar.wrap(in, bar(task).setInitialMax(size).setUnit("MiB", 1 << 20).showSpeed());
  }

  /** A progress bar on System.err, where the command's other messages go (by default it writes to fd 2 itself). */
  static ProgressBarBuilder bar(String task) {
    return new ProgressBarBuilder().setTaskName(task).setConsumer(new ConsoleProgressBarConsumer(System.err));
  }

  @Command(name = "get", mixinStandardHelpOptions = true, description = "Copy a DBFS file (or with -r a directory) to the local disk.")
  static final class Get extends Base {
    @Option(names = "-r", description = "Copy directories recursively.")
    boolean recursive;

    @Parameters(index = "0", paramLabel = "PATH")
    String source;

    @Parameters(index = "1", paramLabel = "LOCAL", description = "Target; into it if it is a directory.")
    String local;

    @Override
    int run(FileSystem fs, Session s) throws IOException {
      Path into = LocalPaths.of(local);
      Path to = Files.isDirectory(into) ? LocalPaths.child(into, source.substring(source.lastIndexOf('/') + 1)) : into;
      get(fs, s, source, fs.stat(s, source, false), to);
      return 0;
    }

    private void get(FileSystem fs, Session s, String from, Stat st, Path to) throws IOException {
      if (st.isDirectory()) {
        if (!recursive) {
          throw SyscallException.invalid(from + " is a directory (use -r)");
        }
        Files.createDirectories(to);
        for (DirEntry e : fs.list(s, from)) {
          get(fs, s, child(from, e.name()), e.stat(), LocalPaths.child(to, e.name()));
        }
      } else if (st.isSymlink()) {
        Files.createSymbolicLink(to, LocalPaths.target(fs.readlink(s, from)));
      } else if (st.isSpecial()) {
        System.err.println("dbos fs get: skipping " + Names.shown(from) + ": a named pipe or socket has no content to copy");
        return;
      } else {
        try (InputStream in = progress(fs.openInput(s, from), "get " + Names.shown(from), st.size());
             OutputStream out = Files.newOutputStream(to)) {
          in.transferTo(out);
        }
      }
      try {
        Files.setPosixFilePermissions(to, PosixFilePermissions.fromString(rwx(st.mode())));
        Files.setLastModifiedTime(to, java.nio.file.attribute.FileTime.from(st.mtime()));
      } catch (FileSystemException | UnsupportedOperationException e) {
        // best effort, like cp without -p failing quietly on foreign file systems
      }
    }
  }

  @Command(name = "mkdir", mixinStandardHelpOptions = true, description = "Create directories.")
  static final class Mkdir extends Base {
    @Option(names = "-p", description = "Create missing parents; no error if it exists.")
    boolean parents;

    @Option(names = "-m", paramLabel = "MODE", defaultValue = "755", description = "Octal mode (default: ${DEFAULT-VALUE}).")
    String mode;

    @Parameters(paramLabel = "PATH", arity = "1..*")
    List<String> paths;

    @Override
    int run(FileSystem fs, Session s) {
      int m = Integer.parseInt(mode, 8);
      for (String p : paths) {
        if (!parents) {
          fs.mkdir(s, p, m);
          continue;
        }
        var at = new StringBuilder();
        for (String part : p.split("/")) {
          if (part.isEmpty()) {
            continue;
          }
          at.append('/').append(part);
          try {
            fs.mkdir(s, at.toString(), m);
          } catch (org.dbos.kernel.files.FsException e) {
            if (e.errno() != org.dbos.kernel.files.Errno.EEXIST) {
              throw e;
            }
          }
        }
      }
      return 0;
    }
  }

  @Command(name = "rm", mixinStandardHelpOptions = true, description = "Remove files (with -r directories and their contents).")
  static final class Rm extends Base {
    @Option(names = "-r", description = "Remove directories and their contents.")
    boolean recursive;

    @Parameters(paramLabel = "PATH", arity = "1..*")
    List<String> paths;

    @Override
    int run(FileSystem fs, Session s) {
      for (String p : paths) {
        remove(fs, s, p, fs.stat(s, p, false));
      }
      return 0;
    }

    private void remove(FileSystem fs, Session s, String p, Stat st) {
      if (!st.isDirectory()) {
        fs.unlink(s, p);
        return;
      }
      if (!recursive) {
        throw SyscallException.invalid(p + " is a directory (use -r)");
      }
      for (DirEntry e : fs.list(s, p)) {
        remove(fs, s, child(p, e.name()), e.stat());
      }
      fs.rmdir(s, p);
    }
  }

  @Command(name = "mv", mixinStandardHelpOptions = true, description = "Rename or move (atomically; replaces the target like rename(2)).")
  static final class Mv extends Base {
    @Parameters(index = "0", paramLabel = "FROM")
    String from;

    @Parameters(index = "1", paramLabel = "TO", description = "Target; into it if it is a directory.")
    String to;

    @Override
    int run(FileSystem fs, Session s) {
      String target = to;
      try {
        if (fs.stat(s, to, true).isDirectory()) {
          target = child(to, from.substring(from.lastIndexOf('/') + 1));
        }
      } catch (SyscallException e) {
        // a new name
      }
      fs.rename(s, from, target);
      return 0;
    }
  }

  @Command(name = "du", mixinStandardHelpOptions = true, description = "Bytes used under each path (apparent sizes; hard links counted once).")
  static final class Du extends Base {
    @Parameters(paramLabel = "PATH", defaultValue = "/", arity = "0..*")
    List<String> paths;

    @Override
    int run(FileSystem fs, Session s) {
      for (String p : paths) {
        var seen = new java.util.HashSet<Long>();
        long[] total = {0};
        walk(fs, s, p, fs.stat(s, p, false), (path, st) -> {
          if (st.isFile() && seen.add(st.ino())) {
            total[0] += st.size();
          }
        });
        println(total[0] + "\t" + p);
      }
      return 0;
    }
  }

  @Command(name = "find", mixinStandardHelpOptions = true, description = "List every path under PATH, optionally filtered by name and type.")
  static final class Find extends Base {
    @Parameters(paramLabel = "PATH", defaultValue = "/")
    String path;

    @Option(names = "-name", paramLabel = "GLOB", description = "Only names matching this glob.")
    String name;

    @Option(names = "-type", paramLabel = "f|d|l|p|s",
        description = "Only files, directories, symlinks, named pipes or sockets.")
    String type;

    @Override
    int run(FileSystem fs, Session s) {
      PathMatcher m = name == null ? null : java.nio.file.FileSystems.getDefault().getPathMatcher("glob:" + name);
      walk(fs, s, path, fs.stat(s, path, false), (p, st) -> {
        String last = Names.shown(p.substring(p.lastIndexOf('/') + 1)); // a Path holds no unpaired surrogate
        boolean typeOk = type == null || type.equals(mode(st).substring(0, 1).replace('-', 'f'));
        if (typeOk && (m == null || !last.isEmpty() && m.matches(Path.of(last)))) {
          println(p);
        }
      });
      return 0;
    }
  }

  @Command(name = "check", mixinStandardHelpOptions = true, description = "Verify every inode, entry and chunk (admin). Exit 1 if inconsistent.")
  static final class Check extends Base {
    @Option(names = "--data", description = "Also re-hash every stored chunk (reads all data).")
    boolean data;

    @Override
    int run(FileSystem fs, Session s) {
      CheckReport r = fs.check(s, data);
      System.out.printf("%d inodes, %d entries, %d chunks, %d blobs (%d unreferenced, awaiting purge)%n",
          r.inodes(), r.entries(), r.chunks(), r.blobs(), r.garbageBlobs());
      r.problems().forEach(System.out::println);
      System.out.println(r.ok() ? "consistent" : r.problems().size() + " problem(s)");
      return r.ok() ? 0 : 1;
    }
  }

  @Command(name = "purge", mixinStandardHelpOptions = true, description = "Forget file versions and removed names older than --keep now (admin); "
      + "every node also does this by itself for its --fs-retention.")
  static final class Purge extends Base {
    @Option(names = "--keep", paramLabel = "DURATION", defaultValue = "7d",
        description = "Keep what changed within this long (default: ${DEFAULT-VALUE}; 0s forgets every old version).")
    String keep;

    @Override
    int run(FileSystem fs, Session s) {
      Duration horizon = UpCommand.parseDuration(keep, "--keep");
      ProgressBar[] bar = {null}; // shown once a purge takes more than one batch
      Purged total;
      try {
        total = fs.purgeAll(s, horizon, p -> {
          if (bar[0] == null && p.more()) {
            bar[0] = bar("purge").setInitialMax(-1).setUnit(" rows", 1).build();
          }
          if (bar[0] != null) {
            bar[0].stepTo(p.rows());
          }
        });
      } finally {
        if (bar[0] != null) {
          bar[0].close();
        }
      }
      System.out.printf("forgot %d versions, %d removed names, %d chunks, %d blobs%n",
          total.versions(), total.names(), total.chunks(), total.blobs());
      return 0;
    }
  }
}
