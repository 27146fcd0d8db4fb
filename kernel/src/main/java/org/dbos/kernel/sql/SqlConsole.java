package org.dbos.kernel.sql;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Right;
import org.dbos.kernel.Session;
import org.dbos.kernel.SyscallException;
import org.postgresql.core.NativeQuery;
import org.postgresql.core.Parser;

/**
 * SQL over the OS tables, as a system call: {@code dbos sql}. Reads need READ on {@code sql} and run
 * as the {@code dbos_reader} role through {@code sql_read}, which sees every OS table but no secret
 * and can write nothing. Writes need ADMIN on {@code sql} and run as the kernel's own database user.
 */
public final class SqlConsole {
  /** A result: column names and rows as text (null for SQL NULL), or the count of a write. */
  public record Result(List<String> columns, List<List<String>> rows, long updateCount, boolean truncated) {}

  private static final ObjectMapper json = new ObjectMapper();
  /** Statements that change something: refused up front with a hint, instead of a puzzling syntax error. */
  private static final java.util.regex.Pattern WRITE = java.util.regex.Pattern.compile(
      "(?is)\\s*(insert|update|delete|merge|create|drop|alter|truncate|grant|revoke|copy|call|do|set|reset|"
          + "vacuum|analyze|lock|comment|refresh|cluster|reindex|discard|listen|notify|begin|start|commit|"
          + "rollback|savepoint|release|prepare|execute|deallocate|import|load|security|checkpoint)\\b");
  private final Kernel kernel;

  public SqlConsole(Kernel kernel) {
    this.kernel = kernel;
  }

  /**
   * Runs one statement. {@code write=false}: a query (SELECT, VALUES, TABLE, WITH …) whose first
   * {@code maxRows} rows are returned. INVALID_ARGUMENT for several statements or a syntax error,
   * PERMISSION_DENIED without the right.
   */
  public Result run(Session s, String sql, boolean write, int maxRows) {
    String stmt = singleStatement(sql);
    if (!write && WRITE.matcher(stmt).lookingAt()) {
      throw SyscallException.invalid("dbos sql runs queries only (SELECT, WITH, VALUES, TABLE); "
          + "to change data pass --write (needs the ADMIN right on sql)");
    }
    if (write) {
      return kernel.call(s, "sql.write", Right.ADMIN, "sql", tx -> {
        try (Statement st = tx.connection().createStatement()) {
          st.setMaxRows(maxRows + 1);
          if (st.execute(stmt)) {
            try (ResultSet rs = st.getResultSet()) {
              return fromResultSet(rs, maxRows);
            }
          }
          return new Result(List.of(), List.of(), st.getUpdateCount(), false);
        }
      });
    }
    return kernel.call(s, "sql.read", Right.READ, "sql", tx -> {
      try (Statement st = tx.connection().createStatement()) {
        st.execute("SET LOCAL statement_timeout = '60s'"); // sql_read itself can write nothing
      }
      List<String> columns = new ArrayList<>();
      List<List<String>> rows = new ArrayList<>();
      boolean truncated = false;
      try (var ps = tx.connection().prepareStatement("SELECT * FROM sql_read(?)")) {
        ps.setString(1, stmt);
        ps.setFetchSize(1000);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            if (rows.size() == maxRows) {
              truncated = true;
              break;
            }
            JsonNode row = parse(rs.getString(1));
            if (columns.isEmpty()) {
              row.fieldNames().forEachRemaining(columns::add);
            }
            var values = new ArrayList<String>(columns.size());
            for (Map.Entry<String, JsonNode> field : row.properties()) {
              JsonNode v = field.getValue();
              values.add(v.isNull() ? null : v.isValueNode() ? v.asText() : v.toString());
            }
            rows.add(values);
          }
        }
      }
      return new Result(columns, rows, -1, truncated);
    });
  }

  private static JsonNode parse(String text) throws SQLException {
    try {
      return json.readTree(text);
    } catch (JsonProcessingException e) {
      throw new SQLException("unreadable row: " + e.getMessage(), e);
    }
  }

  /** The statement without its trailing semicolon; INVALID_ARGUMENT if the text holds zero or several. */
  static String singleStatement(String sql) {
    if (sql == null || sql.isBlank()) {
      throw SyscallException.invalid("no SQL given");
    }
    List<NativeQuery> parts;
    try {
      parts = Parser.parseJdbcSql(sql, true, false, true, false, true);
    } catch (SQLException e) {
      throw SyscallException.invalid(e.getMessage());
    }
    if (parts.size() > 1) {
      throw SyscallException.invalid("one statement at a time, please (found " + parts.size() + ")");
    }
    String s = sql.strip();
    while (s.endsWith(";")) {
      s = s.substring(0, s.length() - 1).strip();
    }
    return s;
  }

  private static Result fromResultSet(ResultSet rs, int maxRows) throws SQLException {
    ResultSetMetaData md = rs.getMetaData();
    var columns = new ArrayList<String>();
    for (int i = 1; i <= md.getColumnCount(); i++) {
      columns.add(md.getColumnLabel(i));
    }
    var rows = new ArrayList<List<String>>();
    boolean truncated = false;
    while (rs.next()) {
      if (rows.size() == maxRows) {
        truncated = true;
        break;
      }
      var row = new ArrayList<String>();
      for (int i = 1; i <= columns.size(); i++) {
        row.add(rs.getString(i));
      }
      rows.add(row);
    }
    return new Result(columns, rows, -1, truncated);
  }
}
