package org.dbos.server.fuse;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import org.cryptomator.jfuse.api.DirFiller;
import org.cryptomator.jfuse.api.Fuse;
import org.cryptomator.jfuse.linux.amd64.extr.fuse3.fuse_fill_dir_t;
import org.cryptomator.jfuse.linux.amd64.extr.fuse3.fuse_operations;
import org.cryptomator.jfuse.linux.amd64.extr.fuse3.stat;
import org.dbos.kernel.files.Names;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Paths through the mount as the bytes they are. jfuse 0.7.3 decodes each {@code const char *path} as
 * UTF-8, turning every other byte into U+FFFD (so names {@code \xff} and {@code \xfe} would be one), and
 * encodes the names a directory lists as UTF-8. {@link #interpose} puts a stub of its own in front of
 * each of jfuse's operations that take paths: a UTF-8 path goes straight on to jfuse's method; any other
 * makes the request see its paths as {@link Names} writes them ({@link #path}). {@link #fill} lists a
 * name that is not UTF-8 through libfuse's filler itself.
 */
final class RawPaths {
  private static final Logger log = LoggerFactory.getLogger(RawPaths.class);
  /** fuse_operations entries whose leading arguments are paths, and how many: all the others pass 1. */
  private static final List<String> BY_PATH = List.of("getattr", "readlink", "mkdir", "unlink", "rmdir", "symlink",
      "rename", "chmod", "chown", "truncate", "open", "create", "utimens", "opendir", "readdir", "access");
  private static final Set<String> TWO_PATHS = Set.of("symlink", "rename");
  /** The current request's paths as {@link Names} writes them, while one of them is not UTF-8. */
  private static final ThreadLocal<String[]> ESCAPED = new ThreadLocal<>();
  private static final MethodHandle UTF8_1;
  private static final MethodHandle UTF8_2;
  private static final MethodHandle ESCAPING;
  private static final AtomicBoolean WARNED = new AtomicBoolean();
  private static volatile Method fillerBuf;
  private static volatile Method fillerCallback;

  static {
    try {
      var l = MethodHandles.lookup();
      UTF8_1 = l.findStatic(RawPaths.class, "utf8", MethodType.methodType(boolean.class, MemorySegment.class));
      UTF8_2 = l.findStatic(RawPaths.class, "utf8",
          MethodType.methodType(boolean.class, MemorySegment.class, MemorySegment.class));
      ESCAPING = l.findStatic(RawPaths.class, "escaping",
          MethodType.methodType(int.class, MethodHandle.class, int.class, Object[].class));
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private RawPaths() {}

  /** {@code path} as given by jfuse, or as it really is if this request's paths are not UTF-8. */
  static String path(String path, int index) {
    String[] e = ESCAPED.get();
    return e == null ? path : e[index];
  }

  /**
   * Points each entry of {@link #BY_PATH} that jfuse bound at a stub that checks the paths and calls
   * jfuse's own method (a method handle: no second native transition). Before fuse_new copies the table.
   */
  static void interpose(Fuse fuse) {
    try {
      MemorySegment table = Mount.operations(fuse);
      for (String op : BY_PATH) {
        long offset = (long) fuse_operations.class.getMethod(op + "$offset").invoke(null);
        if (table.get(ValueLayout.ADDRESS, offset).equals(MemorySegment.NULL)) {
          continue; // not an operation of DbfsFuse
        }
        Method m = Arrays.stream(fuse.getClass().getDeclaredMethods())
            .filter(x -> x.getName().equals(op) && x.getParameterCount() > 0 && x.getParameterTypes()[0] == MemorySegment.class)
            .findFirst().orElseThrow(() -> new NoSuchMethodException(op));
        m.setAccessible(true);
        MethodHandle original = MethodHandles.lookup().unreflect(m).bindTo(fuse);
        var descriptor = (FunctionDescriptor) Class.forName(fuse_operations.class.getName() + "$" + op)
            .getMethod("descriptor").invoke(null);
        int paths = TWO_PATHS.contains(op) ? 2 : 1;
        int n = original.type().parameterCount();
        MethodHandle spread = original.asSpreader(Object[].class, n).asType(MethodType.methodType(int.class, Object[].class));
        MethodHandle escaping = MethodHandles.insertArguments(ESCAPING, 0, spread, paths)
            .asCollector(Object[].class, n).asType(original.type());
        MethodHandle stub = MethodHandles.guardWithTest(paths == 2 ? UTF8_2 : UTF8_1, original, escaping);
        table.set(ValueLayout.ADDRESS, offset, Linker.nativeLinker().upcallStub(stub, descriptor, Arena.global()));
      }
    } catch (ReflectiveOperationException | RuntimeException e) {
      log.warn("names that are not UTF-8 cannot be used through the mount (jfuse reads them as U+FFFD): {}", e.toString());
    }
  }

  private static boolean utf8(MemorySegment path) {
    MemorySegment s = path.reinterpret(4096);
    for (int i = 0; i < 4095; i++) {
      byte b = s.get(ValueLayout.JAVA_BYTE, i);
      if (b == 0) {
        return true; // ASCII, as most paths are: nothing to copy
      }
      if (b < 0) {
        return Names.isUtf8(bytes(path));
      }
    }
    return true;
  }

  private static boolean utf8(MemorySegment a, MemorySegment b) {
    return utf8(a) && utf8(b);
  }

  /** jfuse's method with the request's paths in {@link #ESCAPED}. */
  private static int escaping(MethodHandle spread, int paths, Object[] args) throws Throwable {
    var escaped = new String[paths];
    for (int i = 0; i < paths; i++) {
      escaped[i] = Names.string(bytes((MemorySegment) args[i]));
    }
    ESCAPED.set(escaped);
    try {
      return (int) spread.invokeExact(args);
    } finally {
      ESCAPED.remove();
    }
  }

  /** A NUL-terminated path, read byte by byte (getString's word-wise scan may run off the mapped page). */
  static byte[] bytes(MemorySegment p) {
    MemorySegment s = p.reinterpret(4096);
    int n = 0;
    while (n < 4095 && s.get(ValueLayout.JAVA_BYTE, n) != 0) {
      n++;
    }
    return s.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
  }

  /**
   * Adds {@code name} (not UTF-8, which jfuse's filler would garble) with its inode number and type to a
   * listing through libfuse's fuse_fill_dir_t; as {@link DirFiller#fill}, non-zero when the buffer is full.
   * -1 without access to jfuse's filler (a later jfuse): then only jfuse's lossy fill is left.
   */
  static int fill(DirFiller filler, byte[] name, long ino, int mode) {
    try {
      if (fillerBuf == null) {
        Method buf = filler.getClass().getDeclaredMethod("buf");
        Method callback = filler.getClass().getDeclaredMethod("callback");
        buf.setAccessible(true);
        callback.setAccessible(true);
        fillerCallback = callback;
        fillerBuf = buf;
      }
      var buf = (MemorySegment) fillerBuf.invoke(filler);
      var callback = (MemorySegment) fillerCallback.invoke(filler);
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment n = arena.allocate(name.length + 1L);
        MemorySegment.copy(name, 0, n, ValueLayout.JAVA_BYTE, 0, name.length);
        MemorySegment st = stat.allocate(arena);
        stat.st_ino(st, ino);
        stat.st_mode(st, mode);
        return fuse_fill_dir_t.invoke(callback, buf, n, st, 0, 0);
      }
    } catch (ReflectiveOperationException | RuntimeException e) {
      if (WARNED.compareAndSet(false, true)) {
        log.warn("names that are not UTF-8 are listed garbled through the mount: {}", e.toString());
      }
      return -1;
    }
  }
}
