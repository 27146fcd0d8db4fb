package org.dbos.server.cli;

import java.util.concurrent.Callable;
import org.dbos.kernel.sql.SqlConsole;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "sql", mixinStandardHelpOptions = true,
    description = {"Run one SQL statement over the OS tables and print the result.",
        "Read-only by default (SELECT, VALUES, WITH …; secrets are not readable).",
        "Writes need --write and the ADMIN right on 'sql'."})
final class SqlCommand implements Callable<Integer> {
  @Mixin ClientOptions client;

  @Parameters(index = "0", paramLabel = "SQL", description = "The statement, e.g. \"select * from audit\".")
  String sql;

  @Option(names = "--write", description = "Allow a statement that changes data (admins only).")
  boolean write;

  @Option(names = "--max-rows", paramLabel = "N", defaultValue = "1000",
      description = "Print at most N rows (default: ${DEFAULT-VALUE}).")
  int maxRows;

  @Override
  public Integer call() {
    try (var c = client.connect()) {
      SqlConsole.Result r = new SqlConsole(c.kernel()).run(c.session(), sql, write, maxRows);
      if (r.updateCount() >= 0) {
        System.out.println(r.updateCount() + " row(s) changed");
        return 0;
      }
      if (r.columns().isEmpty()) {
        System.out.println("(0 rows)");
        return 0;
      }
      Table.print(System.out, r.columns(), r.rows());
      System.out.printf("(%d row%s%s)%n", r.rows().size(), r.rows().size() == 1 ? "" : "s",
          r.truncated() ? ", more not shown: raise --max-rows" : "");
    }
    return 0;
  }
}
