package org.dbos.kernel.security;

import java.util.UUID;
import org.dbos.kernel.Session;

/** A user, service or node known to the OS, with its POSIX identity. */
public record Principal(long id, String name, String kind, int uid, int gid, boolean admin, boolean disabled) {
  public Session session(UUID sessionId, UUID nodeId, String taskId) {
    return new Session(sessionId, id, name, admin, uid, gid, nodeId, taskId);
  }
}
