package org.dbos.kernel;

import java.util.UUID;

/**
 * An authenticated principal acting through one node (and, for a task, on behalf of that task). Every
 * system call names its session; the kernel re-checks in the call's transaction that the session is
 * still open and unexpired, so closing a session or disabling a principal takes effect at once.
 */
public record Session(UUID id, long principalId, String principal, boolean admin, int uid, int gid,
                      UUID nodeId, String taskId) {
  /** The same principal acting for a task (the scheduler runs a task's calls in such a session). */
  public Session forTask(String task) {
    return new Session(id, principalId, principal, admin, uid, gid, nodeId, task);
  }
}
