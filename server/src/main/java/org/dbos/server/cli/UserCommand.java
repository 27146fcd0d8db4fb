package org.dbos.server.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.dbos.kernel.Right;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.security.Principal;
import org.dbos.kernel.security.Principals;
import org.dbos.kernel.security.Secrets;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "user", mixinStandardHelpOptions = true, description = "Manage principals and their rights.",
    subcommands = {UserCommand.Add.class, UserCommand.Ls.class, UserCommand.Grant.class, UserCommand.Revoke.class,
        UserCommand.Passwd.class, UserCommand.Disable.class})
final class UserCommand {
  @Command(name = "add", mixinStandardHelpOptions = true,
      description = "Create a principal; prints a generated password unless --new-password-file is given.")
  static final class Add implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(paramLabel = "NAME") String name;
    @Option(names = "--kind", defaultValue = "user", description = "user, service, node or role (default: ${DEFAULT-VALUE}).")
    String kind;
    @Option(names = "--uid", description = "POSIX uid (default: next free from 1000).") Integer uid;
    @Option(names = "--gid", description = "POSIX gid (default: the uid).") Integer gid;
    @Option(names = "--admin", description = "Give the principal every right.") boolean admin;
    @Option(names = "--new-password-file", paramLabel = "FILE", description = "Read the new principal's password here.")
    Path newPasswordFile;

    @Override
    public Integer call() {
      String secret = ClientOptions.readFile(newPasswordFile);
      boolean generated = secret == null;
      if (generated) {
        secret = Secrets.generate();
      }
      try (var c = client.connect()) {
        Principal p = c.kernel().principals().create(c.session(), name, kind, secret, uid, gid, admin);
        System.out.printf("created %s %s (uid %d, gid %d)%n", p.kind(), p.name(), p.uid(), p.gid());
        if (generated) {
          System.out.println("password: " + secret);
        }
      }
      return 0;
    }
  }

  @Command(name = "ls", mixinStandardHelpOptions = true, description = "List principals.")
  static final class Ls implements Callable<Integer> {
    @Mixin ClientOptions client;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        List<List<String>> rows = new ArrayList<>();
        for (Principal p : c.kernel().principals().list(c.session())) {
          rows.add(List.of(p.name(), p.kind(), String.valueOf(p.uid()), String.valueOf(p.gid()),
              p.admin() ? "yes" : "", p.disabled() ? "disabled" : ""));
        }
        Table.print(System.out, List.of("name", "kind", "uid", "gid", "admin", "state"), rows);
      }
      return 0;
    }
  }

  @Command(name = "grant", mixinStandardHelpOptions = true,
      description = "Grant RIGHT (READ, WRITE, EXECUTE, ADMIN) on every object whose name starts with PREFIX"
          + " (with --exact: on the object named PREFIX only).")
  static final class Grant implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(index = "0", paramLabel = "NAME") String name;
    @Parameters(index = "1", paramLabel = "RIGHT") String right;
    @Parameters(index = "2", paramLabel = "PREFIX", description = "e.g. kv:/app/ or sql ('' for everything)")
    String prefix;
    @Option(names = "--exact", description = "the one object named PREFIX, not the names that extend it") boolean exact;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        c.kernel().principals().grant(c.session(), name, new Principals.Grant(parseRight(right), prefix, exact));
      }
      return 0;
    }
  }

  @Command(name = "revoke", mixinStandardHelpOptions = true, description = "Revoke a grant.")
  static final class Revoke implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(index = "0", paramLabel = "NAME") String name;
    @Parameters(index = "1", paramLabel = "RIGHT") String right;
    @Parameters(index = "2", paramLabel = "PREFIX") String prefix;
    @Option(names = "--exact", description = "revoke an exact grant (made with grant --exact)") boolean exact;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        c.kernel().principals().revoke(c.session(), name, new Principals.Grant(parseRight(right), prefix, exact));
      }
      return 0;
    }
  }

  @Command(name = "passwd", mixinStandardHelpOptions = true, description = "Set a principal's password from a file.")
  static final class Passwd implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(index = "0", paramLabel = "NAME") String name;
    @Option(names = "--new-password-file", paramLabel = "FILE", required = true) Path newPasswordFile;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        c.kernel().principals().setSecret(c.session(), name, ClientOptions.readFile(newPasswordFile));
      }
      return 0;
    }
  }

  @Command(name = "disable", mixinStandardHelpOptions = true,
      description = "Disable a principal (its sessions stop working at once); --enable undoes it.")
  static final class Disable implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(index = "0", paramLabel = "NAME") String name;
    @Option(names = "--enable") boolean enable;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        c.kernel().principals().setDisabled(c.session(), name, !enable);
      }
      return 0;
    }
  }

  static Right parseRight(String s) {
    try {
      return Right.valueOf(s.toUpperCase(java.util.Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw SyscallException.invalid("unknown right '" + s + "': READ, WRITE, EXECUTE or ADMIN");
    }
  }
}
