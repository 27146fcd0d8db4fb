package org.dbos.kernel.node;

import java.util.List;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;

/** What `dbos status` shows: the nodes, the database, the schema version and the biggest tables. */
public record ClusterStatus(List<NodeInfo> nodes, String serverVersion, String database, long databaseBytes,
                            String schemaVersion, List<TableSize> tables) {
  public record TableSize(String name, long rows, long bytes) {}

  private static final String DATABASE = """
      SELECT current_setting('server_version'), current_database(), pg_database_size(current_database()),
             (SELECT version FROM flyway_schema_history WHERE success ORDER BY installed_rank DESC LIMIT 1)""";
  private static final String TABLES = """
      SELECT relname, n_live_tup, pg_total_relation_size(relid)
      FROM pg_stat_user_tables WHERE schemaname = 'dbos'
      ORDER BY pg_total_relation_size(relid) DESC, relname LIMIT 12""";

  /** Reads the status as one system call (READ on {@code node:}). */
  public static ClusterStatus read(Kernel kernel, Session s, int maxNodes) {
    return kernel.call(s, "status.read", Right.READ, "node:", tx -> {
      List<NodeInfo> nodes = tx.query(Membership.LIST, Membership::map, maxNodes);
      var tables = tx.query(TABLES, rs -> new TableSize(rs.getString(1), rs.getLong(2), rs.getLong(3)));
      return tx.queryOne(DATABASE, rs -> new ClusterStatus(nodes, rs.getString(1), rs.getString(2), rs.getLong(3),
          rs.getString(4), tables)).orElseThrow();
    });
  }
}
