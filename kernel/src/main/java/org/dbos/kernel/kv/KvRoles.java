package org.dbos.kernel.kv;

import java.util.ArrayList;
import java.util.Arrays;
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
 * is {@link Principals#grantRole}, and a permission is a READ and/or WRITE grant: on one key an exact
 * grant on the key's object, on a prefix a prefix grant on {@code "kv:" + prefix} (which covers the
 * keys and the ranges within it, see {@link KeyRanges#object}). DBOS grants name one object or a
 * prefix, so a permission on any other range is refused (INVALID_ARGUMENT) rather than widened.
 * Every method is one or two audited kernel calls; only admins (etcd's root) may change roles.
 */
public final class KvRoles {
  /** etcd's permission types. */
  public enum Type {
    READ, WRITE, READWRITE
  }

  /** A permission as etcd reports it: one key (empty rangeEnd), or a prefix as [key, prefixEnd(key)). */
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

  /** The role's permissions on keys, by key. */
  public List<Permission> permissions(Session s, String role) {
    requireRole(s, role);
    var types = new LinkedHashMap<Principals.Grant, Type>(); // keyed by the grant with right READ
    for (Principals.Grant g : principals.grants(s, role)) {
      if (!g.object().startsWith("kv:") || (g.right() != Right.READ && g.right() != Right.WRITE)) {
        continue;
      }
      Type t = g.right() == Right.READ ? Type.READ : Type.WRITE;
      types.merge(new Principals.Grant(Right.READ, g.object(), g.exact()), t, (a, b) -> a == b ? a : Type.READWRITE);
    }
    var out = new ArrayList<Permission>();
    types.forEach((g, t) -> {
      byte[] key = KeyRanges.bytes(g.object().substring(3));
      out.add(new Permission(t, key, g.exact() ? new byte[0] : KeyRanges.prefixEnd(key)));
    });
    return out;
  }

  public void grantPermission(Session s, String role, Type type, byte[] key, byte[] rangeEnd) {
    requireRole(s, role);
    if (type != Type.WRITE) {
      principals.grant(s, role, grant(Right.READ, key, rangeEnd));
    }
    if (type != Type.READ) {
      principals.grant(s, role, grant(Right.WRITE, key, rangeEnd));
    }
  }

  /** Revokes whatever the role holds on the key or prefix; fails if it held nothing there. */
  public void revokePermission(Session s, String role, byte[] key, byte[] rangeEnd) {
    Principals.Grant read = grant(Right.READ, key, rangeEnd);
    boolean held = principals.grants(s, role).stream()
        .anyMatch(g -> g.object().equals(read.object()) && g.exact() == read.exact());
    if (!held) {
      throw precondition(Kv.ERR_PERMISSION_NOT_GRANTED);
    }
    principals.revoke(s, role, read);
    principals.revoke(s, role, grant(Right.WRITE, key, rangeEnd));
  }

  /** The grant for a permission on [key, rangeEnd): exact for one key, a prefix grant for a prefix. */
  private static Principals.Grant grant(Right right, byte[] key, byte[] rangeEnd) {
    if (KeyRanges.single(rangeEnd)) {
      return new Principals.Grant(right, KeyRanges.keyObject(key), true);
    }
    if (Arrays.equals(rangeEnd, KeyRanges.prefixEnd(key)) || (key.length == 0 && KeyRanges.fromKey(rangeEnd))) {
      return new Principals.Grant(right, KeyRanges.keyObject(key), false);
    }
    throw SyscallException.invalid("DBOS grants a permission on one key or on a prefix; ["
        + KeyRanges.text(key) + ", " + KeyRanges.text(rangeEnd) + ") is neither");
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
