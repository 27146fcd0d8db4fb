package org.dbos.server.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.dbos.kernel.Node;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.files.Names;
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
    System.exit(run(argumentsAsGiven(args)));
  }

  /**
   * The arguments as the bytes the caller passed, each as {@link Names#string} reads bytes (UTF-8, any
   * other byte as U+DC80..U+DCFF), from /proc/self/cmdline: the JVM decodes argv with the locale's
   * charset, which makes '\xff' and '\xfe' one file name (and, in the C locale, every non-ASCII
   * byte a '?'). {@code decoded} itself unless the command line ends with this class's name and as
   * many arguments, the ASCII ones as the JVM decoded them (no /proc; started some other way).
   */
  static String[] argumentsAsGiven(String[] decoded) {
    List<byte[]> raw = new ArrayList<>();
    try {
      byte[] all = Files.readAllBytes(Path.of("/proc/self/cmdline"));
      for (int from = 0, i = 0; i < all.length; i++) {
        if (all[i] == 0) {
          raw.add(Arrays.copyOfRange(all, from, i));
          from = i + 1;
        }
      }
    } catch (IOException | RuntimeException e) {
      return decoded;
    }
    int first = raw.size() - decoded.length;
    if (first < 1 || !new String(raw.get(first - 1), StandardCharsets.US_ASCII).equals(Main.class.getName())) {
      return decoded;
    }
    String[] given = new String[decoded.length];
    for (int i = 0; i < decoded.length; i++) {
      given[i] = Names.string(raw.get(first + i));
      if (given[i].chars().allMatch(c -> c < 0x80) && !given[i].equals(decoded[i])) {
        return decoded;
      }
    }
    return given;
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
      // Not a kernel error: still one line, the message where there is one.
      cmd.getErr().println("dbos: " + (ex.getMessage() != null ? ex.getMessage() : ex.toString()));
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
