package org.dbos.kernel.scheduler;

import java.util.concurrent.ConcurrentHashMap;
import org.dbos.kernel.SyscallException;

/** The functions a worker can run, by name. A worker claims only function tasks whose name is registered here. */
public final class Functions {
  private final ConcurrentHashMap<String, TaskFunction> byName = new ConcurrentHashMap<>();
  private volatile String[] names = new String[0];

  /** Registers {@code f} as {@code name}; ALREADY_EXISTS if the name is taken. */
  public Functions register(String name, TaskFunction f) {
    if (byName.putIfAbsent(name, f) != null) {
      throw new SyscallException(SyscallException.Code.ALREADY_EXISTS, "function '" + name + "' is already registered");
    }
    names = byName.keySet().toArray(String[]::new);
    return this;
  }

  TaskFunction get(String name) {
    return byName.get(name);
  }

  String[] names() {
    return names;
  }
}
