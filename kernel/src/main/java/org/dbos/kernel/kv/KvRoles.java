package org.dbos.kernel.kv;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.security.Principal;
import org.dbos.kernel.security.Principals;

/**
 * etcd's roles as DBOS roles: an etcd role is a principal of kind {@code role}, granting it to a user
 * is {@link Principals#grantRole}, and a permission on a key range is a READ and/or WRITE grant on
 * {@code "kv:"} plus the prefix the range's keys share ({@link KeyRanges#object}). DBOS grants are on
 * prefixes, so a permission on one key also covers the keys that extend it, and a range that is not a
 * prefix is granted as its keys' common prefix. Every method is one or two audited kernel calls; only
 * admins (etcd's root) may change roles.
 */
public final class KvRoles {
  /** etcd's permission types. */
  public enum Type {
    READ, WRITE, READWRITE
  }

  /** A permission as etcd reports it: the granted prefix as [key, prefixEnd(key)). */
  public record Permission(Type type, byte[] key, byte[] rangeEnd) {}

  private final Principals principals;

  public KvRoles(Kernel kernel) {
    this.principals = kernel.principals();
  }

  public void add(Session s, String role) {
    if (role.isEmpty()) {
      throw SyscallException.invalid(Kv.ERR_ROLE_EMPTY);
    }
    try {
      principals.create(s, role, "role", null, null, null, false);
    } catch (SyscallException e) {
      throw e.code() == SyscallException.Code.ALREADY_EXISTS ? precondition(Kv.ERR_ROLE_EXISTS) : e;
    }
  }

  public void delete(Session s, String role) {
    if (!principals.deleteRole(s, role)) {
      throw precondition(Kv.ERR_ROLE_NOT_FOUND);
    }
  }

  public List<String> list(Session s) {
    return principals.list(s).stream().filter(p -> p.kind().equals("role")).map(Principal::name).toList();
  }

  /** The role's permissions on keys, by prefix. */
  public List<Permission> permissions(Session s, String role) {
    requireRole(s, role);
    var types = new LinkedHashMap<String, Type>();
    for (Principals.Grant g : principals.grants(s, role)) {
      if (!g.prefix().startsWith("kv:") || (g.right() != Right.READ && g.right() != Right.WRITE)) {
        continue;
      }
      Type t = g.right() == Right.READ ? Type.READ : Type.WRITE;
      types.merge(g.prefix().substring(3), t, (a, b) -> a == b ? a : Type.READWRITE);
    }
    var out = new ArrayList<Permission>();
    types.forEach((prefix, t) -> {
      byte[] key = prefix.getBytes(StandardCharsets.UTF_8);
      out.add(new Permission(t, key, KeyRanges.prefixEnd(key)));
    });
    return out;
  }

  public void grantPermission(Session s, String role, Type type, byte[] key, byte[] rangeEnd) {
    requireRole(s, role);
    String object = KeyRanges.object(key, rangeEnd);
    if (type != Type.WRITE) {
      principals.grant(s, role, Right.READ, object);
    }
    if (type != Type.READ) {
      principals.grant(s, role, Right.WRITE, object);
    }
  }

  /** Revokes whatever the role holds on the range's prefix; fails if it held nothing there. */
  public void revokePermission(Session s, String role, byte[] key, byte[] rangeEnd) {
    String object = KeyRanges.object(key, rangeEnd);
    boolean held = permissions(s, role).stream()
        .anyMatch(p -> ("kv:" + new String(p.key(), StandardCharsets.UTF_8)).equals(object));
    if (!held) {
      throw precondition(Kv.ERR_PERMISSION_NOT_GRANTED);
    }
    principals.revoke(s, role, Right.READ, object);
    principals.revoke(s, role, Right.WRITE, object);
  }

  public void grantRole(Session s, String user, String role) {
    try {
      principals.grantRole(s, user, role);
    } catch (SyscallException e) {
      if (e.code() != SyscallException.Code.NOT_FOUND) {
        throw e;
      }
      throw precondition(e.getMessage().startsWith("no role") ? Kv.ERR_ROLE_NOT_FOUND : Kv.ERR_USER_NOT_FOUND);
    }
  }

  public void revokeRole(Session s, String user, String role) {
    boolean had;
    try {
      had = principals.revokeRole(s, user, role);
    } catch (SyscallException e) {
      if (e.code() != SyscallException.Code.NOT_FOUND) {
        throw e;
      }
      throw precondition(Kv.ERR_USER_NOT_FOUND);
    }
    if (!had) {
      throw precondition(Kv.ERR_ROLE_NOT_GRANTED);
    }
  }

  /** The roles granted to {@code user}. */
  public List<String> roles(Session s, String user) {
    return principals.roles(s, user);
  }

  private void requireRole(Session s, String role) {
    if (!list(s).contains(role)) {
      throw precondition(Kv.ERR_ROLE_NOT_FOUND);
    }
  }

  private static SyscallException precondition(String message) {
    return new SyscallException(SyscallException.Code.FAILED_PRECONDITION, message);
  }
}
