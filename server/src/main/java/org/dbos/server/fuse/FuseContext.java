package org.dbos.server.fuse;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * The calling process of the FUSE request being served on this thread. jfuse does not expose
 * fuse_get_context(), so it is called directly: struct fuse_context { struct fuse *fuse; uid_t uid;
 * gid_t gid; pid_t pid; ... }.
 */
final class FuseContext {
  private final MethodHandle getContext;

  FuseContext(Path library) {
    MemorySegment fn = SymbolLookup.libraryLookup(library, Arena.global()).find("fuse_get_context")
        .orElseThrow(() -> new IllegalStateException(library + " has no fuse_get_context"));
    getContext = Linker.nativeLinker().downcallHandle(fn, FunctionDescriptor.of(ValueLayout.ADDRESS));
  }

  /** The uid of the process whose request this thread is serving. */
  int uid() {
    return context().get(ValueLayout.JAVA_INT, 8);
  }

  int pid() {
    return context().get(ValueLayout.JAVA_INT, 16);
  }

  private MemorySegment context() {
    try {
      return ((MemorySegment) getContext.invokeExact()).reinterpret(24);
    } catch (Throwable t) {
      throw new IllegalStateException("fuse_get_context failed", t);
    }
  }
}
