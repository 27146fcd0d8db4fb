package org.dbos.server.fuse;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.cryptomator.jfuse.api.Fuse;
import org.cryptomator.jfuse.api.FuseBuilder;
import org.cryptomator.jfuse.api.FuseMountFailedException;
import org.cryptomator.jfuse.linux.amd64.extr.fuse3.fuse_operations;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.files.FileSystem;
import org.dbos.kernel.files.Names;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * DBFS mounted as a POSIX file system through FUSE (libfuse3 via jfuse). Ordinary programs then read
 * and write the database's files; each request runs as the principal with the caller's uid.
 * {@link #close} unmounts, flushing open files first.
 */
public final class Mount implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Mount.class);
  static final List<Path> LIBRARIES = List.of(Path.of("/usr/lib/x86_64-linux-gnu/libfuse3.so.3"),
      Path.of("/lib/x86_64-linux-gnu/libfuse3.so.3"), Path.of("/usr/lib64/libfuse3.so.3"), Path.of("/usr/lib/libfuse3.so.3"));
  /** libfuse3 somewhere else (`DBOS_JAVA_OPTS=-Ddbos.fuse.library=PATH dbos mount …`): then only there. */
  static final String LIBRARY_PROPERTY = "dbos.fuse.library";
  private static final String MISSING = "FUSE is not available here: %s (install it with `apt-get install fuse3`)";

  private final Path mountpoint;
  private final Fuse fuse;
  private final DbfsFuse ops;
  private boolean closed;

  private Mount(Path mountpoint, Fuse fuse, DbfsFuse ops) {
    this.mountpoint = mountpoint;
    this.fuse = fuse;
    this.ops = ops;
  }

  /** How many names the mount's attribute cache holds (tests: it keeps about the last second's). */
  int cachedNames() {
    return ops.cachedNames();
  }

  /**
   * Mounts the file system of {@code kernel} at {@code mountpoint} (an existing empty directory).
   * Fails with FAILED_PRECONDITION and a one-line message when FUSE (libfuse3, /dev/fuse,
   * fusermount3) is missing or the mount is refused.
   */
  public static Mount mount(Kernel kernel, Path mountpoint) {
    String given = System.getProperty(LIBRARY_PROPERTY);
    Path lib = (given == null ? LIBRARIES : List.of(Path.of(given))).stream().filter(Files::exists).findFirst()
        .orElseThrow(() -> new SyscallException(SyscallException.Code.FAILED_PRECONDITION,
            MISSING.formatted("no " + (given == null ? "libfuse3.so.3" : given))));
    if (!Files.exists(Path.of("/dev/fuse"))) {
      throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION, MISSING.formatted("no /dev/fuse"));
    }
    if (!isRoot() && !Files.exists(Path.of("/usr/bin/fusermount3")) && !Files.exists(Path.of("/bin/fusermount3"))) {
      throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION, MISSING.formatted("no fusermount3"));
    }
    clearStaleMount(mountpoint);
    if (!Files.isDirectory(mountpoint)) {
      throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION, "mount point " + mountpoint + " is not a directory");
    }
    FuseBuilder builder = FuseBuilder.getSupported();
    builder.setLibraryPath(lib.toString());
    var ops = new DbfsFuse(kernel, FileSystem.of(kernel), builder.errno(), new FuseContext(lib));
    Fuse fuse = builder.build(ops);
    bindMissing(fuse, ops);
    RawPaths.interpose(fuse);
    // libfuse's default of at most 10 worker threads: with 64, 32 concurrent fsyncing writers went
    // slower on 2 cores (FsBench, docs/BENCHMARKS.md)
    List<String> options = new ArrayList<>(List.of("fsname=dbfs", "subtype=dbfs"));
    if (isRoot()) {
      options.add("allow_other"); // every local user reaches the mount; DBFS checks their rights itself
    }
    try {
      fuse.mount("dbos", mountpoint.toAbsolutePath(), "-o" + String.join(",", options));
    } catch (FuseMountFailedException | RuntimeException e) {
      closeQuietly(fuse);
      throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION,
          "cannot mount DBFS at " + mountpoint + ": " + e.getMessage());
    }
    log.info("DBFS mounted at {}", mountpoint);
    return new Mount(mountpoint, fuse, ops);
  }

  /**
   * The mount of a node that was killed stays behind answering ENOTCONN ("Transport endpoint is not
   * connected"); after a crash `dbos up --mount` must not need a manual `fusermount3 -u` first.
   */
  private static void clearStaleMount(Path mountpoint) {
    try {
      Files.readAttributes(mountpoint, BasicFileAttributes.class);
    } catch (FileSystemException e) {
      if (e.getReason() != null && e.getReason().contains("not connected")) {
        log.warn("{} is the mount of a process that died; unmounting it", mountpoint);
        try {
          new ProcessBuilder("fusermount3", "-u", "-z", mountpoint.toAbsolutePath().toString()).inheritIO().start()
              .waitFor(10, TimeUnit.SECONDS);
        } catch (IOException ex) {
          throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION,
              mountpoint + " is a stale mount and fusermount3 cannot unmount it: " + ex.getMessage());
        } catch (InterruptedException ex) {
          Thread.currentThread().interrupt();
        }
      }
    } catch (IOException e) {
      // not there: reported by the caller
    }
  }

  /**
   * jfuse 0.7.3 has no operations for link and mknod and leaves their pointers in fuse_operations
   * unset, so `ln` and `mkfifo` would fail with ENOSYS: bind them here (at the offsets jfuse's own
   * jextract layout gives), before fuse_new copies the table at mount.
   */
  private static void bindMissing(Fuse fuse, DbfsFuse ops) {
    try {
      MemorySegment table = operations(fuse);
      bind(table, fuse_operations.mknod$offset(), ops, "mknod",
          FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG),
          int.class, long.class);
      bind(table, fuse_operations.link$offset(), ops, "link",
          FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS), MemorySegment.class);
    } catch (ReflectiveOperationException | RuntimeException e) {
      log.warn("hard links, named pipes and sockets through the mount are unavailable: {}", e.toString());
    }
  }

  /** jfuse's native fuse_operations table, which libfuse copies at mount: writable until then. */
  static MemorySegment operations(Fuse fuse) throws ReflectiveOperationException {
    Field f = Fuse.class.getDeclaredField("fuseOperationsStruct");
    f.setAccessible(true);
    return (MemorySegment) f.get(fuse);
  }

  /** Points the table's entry at {@code offset} to this class's static {@code name}(ops, path, rest…). */
  private static void bind(MemorySegment table, long offset, DbfsFuse ops, String name, FunctionDescriptor signature,
                           Class<?>... rest) throws ReflectiveOperationException {
    var params = new ArrayList<Class<?>>(List.of(DbfsFuse.class, MemorySegment.class));
    params.addAll(List.of(rest));
    MethodHandle target = MethodHandles.lookup().findStatic(Mount.class, name, MethodType.methodType(int.class, params));
    MemorySegment stub = Linker.nativeLinker().upcallStub(MethodHandles.insertArguments(target, 0, ops), signature,
        Arena.global());
    table.set(ValueLayout.ADDRESS, offset, stub);
  }

  @SuppressWarnings("unused") // called from native code through the upcall stub
  private static int link(DbfsFuse ops, MemorySegment from, MemorySegment to) {
    return ops.link(cString(from), cString(to));
  }

  @SuppressWarnings("unused") // called from native code through the upcall stub
  private static int mknod(DbfsFuse ops, MemorySegment path, int mode, long rdev) {
    return ops.mknod(cString(path), mode, rdev);
  }

  /** A NUL-terminated path: its bytes as {@link Names} writes them. */
  private static String cString(MemorySegment p) {
    return Names.string(RawPaths.bytes(p));
  }

  public Path mountpoint() {
    return mountpoint;
  }

  /** Unmounts (open files are flushed first). Closing twice is harmless. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    closeQuietly(fuse);
    ops.closeSessions();
    log.info("DBFS unmounted from {}", mountpoint);
  }

  private static void closeQuietly(Fuse fuse) {
    try {
      fuse.close();
    } catch (TimeoutException | RuntimeException e) {
      log.warn("unmounting DBFS: {}", e.toString());
    }
  }

  private static boolean isRoot() {
    try {
      return "0".equals(Files.getAttribute(Path.of("/proc/self"), "unix:uid").toString());
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }
}
