package org.dbos.server.cli;

import org.dbos.kernel.Node;
import org.dbos.kernel.SyscallException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** `dbos`: the command line front end. Each subcommand is a thin adapter over kernel calls. */
@Command(name = "dbos", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
    description = "DBOS: a database-oriented operating system on PostgreSQL.",
    subcommands = {UpCommand.class, StatusCommand.class, SqlCommand.class, UserCommand.class, VersionCommand.class,
        KvCommand.class, MountCommand.class, FsCommand.class,
        TaskCommands.Run.class, TaskCommands.Ps.class, TaskCommands.Logs.class, TaskCommands.Kill.class,
        QueueCommand.class, CronCommand.class, MessageCommands.Send.class, MessageCommands.Recv.class,
        MessageCommands.Mailbox.class, CommandLine.HelpCommand.class})
public final class Main {
  /** Exit codes: 0 ok, 1 other failure, 2 bad input, 3 permission denied, 4 not found, 5 unavailable. */
  static int exitCode(SyscallException e) {
    return switch (e.code()) {
      case INVALID_ARGUMENT -> 2;
      case PERMISSION_DENIED -> 3;
      case NOT_FOUND -> 4;
      case UNAVAILABLE -> 5;
      default -> 1;
    };
  }

  public static void main(String[] args) {
    // Client commands log warnings only; `dbos up` turns on INFO itself. Logback reads this at start.
    if (System.getProperty("dbos.log.level") == null) {
      System.setProperty("dbos.log.level", args.length > 0 && args[0].equals("up") ? "INFO" : "WARN");
    }
    System.exit(run(args));
  }

  public static int run(String... args) {
    var cli = new CommandLine(new Main());
    cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
      Throwable t = ex;
      while (!(t instanceof SyscallException) && t.getCause() != null) {
        t = t.getCause();
      }
      if (t instanceof SyscallException se) {
        cmd.getErr().println("dbos: " + se.getMessage());
        return exitCode(se);
      }
      cmd.getErr().println("dbos: " + ex);
      return 1;
    });
    return cli.execute(args);
  }

  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {"dbos " + Node.VERSION + " (Java " + Runtime.version() + ")"};
    }
  }
}
