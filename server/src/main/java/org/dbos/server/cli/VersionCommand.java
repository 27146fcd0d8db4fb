package org.dbos.server.cli;

import java.util.concurrent.Callable;
import org.dbos.kernel.Node;
import picocli.CommandLine.Command;

@Command(name = "version", mixinStandardHelpOptions = true, description = "Print the version of dbos.")
final class VersionCommand implements Callable<Integer> {
  @Override
  public Integer call() {
    System.out.println("dbos " + Node.VERSION);
    System.out.println("java " + Runtime.version());
    System.out.println("postgresql 18 (embedded; any PostgreSQL >= 15 through --db)");
    return 0;
  }
}
