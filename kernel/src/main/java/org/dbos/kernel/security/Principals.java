package org.dbos.kernel.security;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.Tx;

/** Principals and their grants. Changing them is an admin's system call like any other. */
public final class Principals {
  private static final String COLUMNS = "id, name, kind, uid, gid, is_admin, disabled";
  private static final String LOOKUP = "SELECT " + COLUMNS + " FROM principals WHERE name = ?";
  private static final String BY_UID = "SELECT " + COLUMNS + " FROM principals WHERE uid = ?";
  private static final String LIST = "SELECT " + COLUMNS + " FROM principals ORDER BY name";
  private static final String LOOKUP_WITH_SECRET = "SELECT " + COLUMNS + ", secret_hash FROM principals WHERE name = ?";
  private static final String INSERT = """
      INSERT INTO principals (name, kind, uid, gid, is_admin, secret_hash)
      VALUES (?, ?, COALESCE(?, nextval('principal_uid')), COALESCE(?, ?, currval('principal_uid')), ?, ?)
      RETURNING""" + " " + COLUMNS;
  /** Locks a principal against sessions opening meanwhile (they take a share lock on it). */
  private static final String LOCK_PRINCIPAL = "SELECT id FROM principals WHERE name = ? FOR NO KEY UPDATE";
  private static final String GRANT = """
      INSERT INTO grants (principal_id, right_name, object_prefix, exact) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING""";
  private static final String REVOKE = """
      DELETE FROM grants WHERE principal_id = ? AND right_name = ? AND object_prefix = ? AND exact = ?""";
  /** Rewrites the rights the open sessions of a principal, and of the holders of it as a role, carry. */
  private static final String REFRESH_SESSIONS = """
      UPDATE sessions SET right_patterns = right_patterns(principal_id)
      WHERE closed_at IS NULL
        AND (principal_id = ? OR principal_id IN (SELECT principal_id FROM principal_roles WHERE role_id = ?))""";
  private static final String GRANT_ROLE = """
      INSERT INTO principal_roles (principal_id, role_id)
      SELECT p.id, r.id FROM principals p, principals r WHERE p.name = ? AND r.name = ? AND r.kind = 'role'
      ON CONFLICT DO NOTHING RETURNING principal_id""";
  private static final String REVOKE_ROLE = """
      DELETE FROM principal_roles WHERE principal_id = (SELECT id FROM principals WHERE name = ?)
        AND role_id = (SELECT id FROM principals WHERE name = ? AND kind = 'role') RETURNING principal_id""";
  private static final String DROP_MEMBERS = "DELETE FROM principal_roles WHERE role_id = ? RETURNING principal_id";
  private static final String ROLES = """
      SELECT r.name FROM principal_roles pr JOIN principals p ON p.id = pr.principal_id
      JOIN principals r ON r.id = pr.role_id WHERE p.name = ? ORDER BY r.name""";
  private static final String GRANTS = """
      SELECT g.right_name, g.object_prefix, g.exact FROM grants g JOIN principals p ON p.id = g.principal_id
      WHERE p.name = ? ORDER BY g.object_prefix, g.exact, g.right_name""";
  private static final String ROLE_ID = "SELECT id FROM principals WHERE name = ? AND kind = 'role' FOR UPDATE";
  private static final String DELETE_ROLE = "DELETE FROM principals WHERE id = ?";

  private static final String CLOSE_SESSIONS = """
      UPDATE sessions SET closed_at = now()
      WHERE closed_at IS NULL AND principal_id = (SELECT id FROM principals WHERE name = ?)""";

  private final Kernel kernel;

  public Principals(Kernel kernel) {
    this.kernel = kernel;
  }

  /**
   * Creates a principal (admin only). {@code uid}/{@code gid} null: the next free uid from 1000, and a
   * gid equal to it. {@code secret} null: the principal cannot log in with a password. Fails with
   * ALREADY_EXISTS for a taken name or uid, INVALID_ARGUMENT for a malformed name or kind.
   */
  public Principal create(Session s, String name, String kind, String secret, Integer uid, Integer gid, boolean admin) {
    if (name == null || !name.matches("[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")) {
      throw SyscallException.invalid("invalid principal name '" + name + "': letters, digits and _ . @ - (at most 64)");
    }
    if (!List.of("user", "service", "node", "role").contains(kind)) {
      throw SyscallException.invalid("kind must be user, service, node or role, not '" + kind + "'");
    }
    String hash = secret == null ? null : Secrets.hash(validSecret(secret));
    return kernel.call(s, "principal.create", Right.ADMIN, "principal:" + name, tx ->
        tx.queryOne(INSERT, Principals::map, name, kind, uid, gid, uid, admin, hash).orElseThrow());
  }

  /** Grants {@code right} on every object whose name starts with {@code prefix} (admin only). */
  public void grant(Session s, String name, Right right, String prefix) {
    grant(s, name, new Grant(right, prefix, false));
  }

  /**
   * Grants {@code g} (admin only): open sessions of the principal, and of its holders if it is a role,
   * have it at once. Granting twice is harmless. NOT_FOUND if there is no such principal.
   */
  public void grant(Session s, String name, Grant g) {
    kernel.call(s, "principal.grant", Right.ADMIN, "principal:" + name, tx -> {
      long id = lockPrincipal(tx, name);
      if (tx.update(GRANT, id, g.right().name(), g.object(), g.exact()) > 0) {
        tx.update(REFRESH_SESSIONS, id, id);
      }
      return null;
    });
  }

  /** Revokes a prefix grant made by {@link #grant}. */
  public void revoke(Session s, String name, Right right, String prefix) {
    revoke(s, name, new Grant(right, prefix, false));
  }

  /** Revokes {@code g}; open sessions lose it at once. Revoking twice is harmless. */
  public void revoke(Session s, String name, Grant g) {
    kernel.call(s, "principal.revoke", Right.ADMIN, "principal:" + name, tx -> {
      long id = lockPrincipal(tx, name);
      if (tx.update(REVOKE, id, g.right().name(), g.object(), g.exact()) > 0) {
        tx.update(REFRESH_SESSIONS, id, id);
      }
      return null;
    });
  }

  /** A password must have something in it (an empty file is a mistake, not a choice). */
  private static String validSecret(String secret) {
    if (secret == null || secret.isBlank()) {
      throw SyscallException.invalid("a password may not be empty");
    }
    return secret;
  }

  private static long lockPrincipal(Tx tx, String name) throws SQLException {
    return tx.queryOne(LOCK_PRINCIPAL, rs -> rs.getLong(1), name)
        .orElseThrow(() -> SyscallException.notFound("no principal named '" + name + "'"));
  }

  /**
   * Grants role {@code role} to principal {@code name} (admin only): it then holds the role's grants.
   * Granting it again is harmless. Fails with NOT_FOUND if either is missing (or {@code role} is no role).
   */
  public void grantRole(Session s, String name, String role) {
    kernel.call(s, "principal.grant-role", Right.ADMIN, "principal:" + name, tx -> {
      lockPrincipal(tx, name);
      var member = tx.queryOne(GRANT_ROLE, rs -> rs.getLong(1), name, role);
      if (member.isPresent()) {
        tx.update(REFRESH_SESSIONS, member.get(), member.get());
      } else {
        Optional<Principal> r = lookup(tx.connection(), role);
        if (r.isEmpty() || !r.get().kind().equals("role")) {
          throw SyscallException.notFound("no role named '" + role + "'");
        }
      }
      return null;
    });
  }

  /** Takes role {@code role} from principal {@code name} (admin only); whether it had it. */
  public boolean revokeRole(Session s, String name, String role) {
    return kernel.call(s, "principal.revoke-role", Right.ADMIN, "principal:" + name, tx -> {
      lockPrincipal(tx, name);
      var member = tx.queryOne(REVOKE_ROLE, rs -> rs.getLong(1), name, role);
      if (member.isPresent()) {
        tx.update(REFRESH_SESSIONS, member.get(), member.get());
      }
      return member.isPresent();
    });
  }

  /** The roles granted to {@code name}, by name. */
  public List<String> roles(Session s, String name) {
    return kernel.call(s, "principal.roles", Right.READ, "principal:" + name,
        tx -> tx.query(ROLES, rs -> rs.getString(1), name));
  }

  /** The grants {@code name} holds directly, by object name. */
  public List<Grant> grants(Session s, String name) {
    return kernel.call(s, "principal.grants", Right.READ, "principal:" + name,
        tx -> tx.query(GRANTS, rs -> new Grant(Right.valueOf(rs.getString(1)), rs.getString(2), rs.getBoolean(3)), name));
  }

  /** A right on the object named {@code object} if {@code exact}, else on every object whose name starts with it. */
  public record Grant(Right right, String object, boolean exact) {}

  /**
   * Deletes a role (admin only): its grants go, and every principal that held it loses them at once.
   * Unlike other principals a role leaves no trace to keep (it never acts). Whether it existed.
   */
  public boolean deleteRole(Session s, String name) {
    return kernel.call(s, "principal.delete-role", Right.ADMIN, "principal:" + name, tx -> {
      var id = tx.queryOne(ROLE_ID, rs -> rs.getLong(1), name);
      if (id.isEmpty()) {
        return false;
      }
      List<Long> members = tx.query(DROP_MEMBERS, rs -> rs.getLong(1), id.get());
      tx.update(DELETE_ROLE, id.get());
      for (long m : members) {
        tx.update(REFRESH_SESSIONS, m, m);
      }
      return true;
    });
  }

  /** Sets a principal's password: an admin for anyone, a principal for itself. */
  public void setSecret(Session s, String name, String secret) {
    kernel.callChecked(s, "principal.passwd", "principal:" + name, false, tx -> {
      if (!s.admin() && !s.principal().equals(name)) {
        throw SyscallException.denied("only an admin may set another principal's password");
      }
      if (tx.update("UPDATE principals SET secret_hash = ? WHERE name = ?", Secrets.hash(validSecret(secret)), name) == 0) {
        throw SyscallException.notFound("no principal named '" + name + "'");
      }
      return null;
    });
  }

  /** Disables or enables a principal (admin only); its open sessions stop working at once. */
  public void setDisabled(Session s, String name, boolean disabled) {
    kernel.call(s, "principal.disable", Right.ADMIN, "principal:" + name, tx -> {
      if (tx.update("UPDATE principals SET disabled = ? WHERE name = ?", disabled, name) == 0) {
        throw SyscallException.notFound("no principal named '" + name + "'");
      }
      if (disabled) {
        tx.update(CLOSE_SESSIONS, name); // system calls check the session row alone
      }
      return null;
    });
  }

  public List<Principal> list(Session s) {
    return kernel.call(s, "principal.list", Right.READ, "principal:", tx -> tx.query(LIST, Principals::map));
  }

  /** The principal with POSIX uid {@code uid}: how the FUSE front end maps a calling process. */
  public Optional<Principal> byUid(Session s, int uid) {
    return kernel.call(s, "principal.byuid", Right.READ, "principal:",
        tx -> tx.queryOne(BY_UID, Principals::map, uid));
  }

  // ---- kernel-internal, no session: used by login and sessions ----

  /** A login attempt: the principal, if one has that name, and whether the attempt succeeds. */
  public record Login(Optional<Principal> principal, boolean ok) {}

  /**
   * Checks {@code secret} against the password of {@code name}, in one read. Fails (ok false) for an
   * unknown name, a disabled principal, one without a password, or a wrong secret.
   */
  public Login authenticate(String name, String secret) {
    return kernel.database().transaction(c -> {
      try (var ps = c.prepareStatement(LOOKUP_WITH_SECRET)) {
        ps.setString(1, name);
        try (var rs = ps.executeQuery()) {
          if (!rs.next()) {
            return new Login(Optional.empty(), false);
          }
          Principal p = map(rs);
          return new Login(Optional.of(p), !p.disabled() && Secrets.verify(secret, rs.getString(8)));
        }
      }
    });
  }

  public Optional<Principal> lookup(Connection c, String name) throws SQLException {
    try (var ps = c.prepareStatement(LOOKUP)) {
      ps.setString(1, name);
      try (var rs = ps.executeQuery()) {
        return rs.next() ? Optional.of(map(rs)) : Optional.empty();
      }
    }
  }

  static Principal map(ResultSet rs) throws SQLException {
    return new Principal(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getInt(4), rs.getInt(5),
        rs.getBoolean(6), rs.getBoolean(7));
  }
}
