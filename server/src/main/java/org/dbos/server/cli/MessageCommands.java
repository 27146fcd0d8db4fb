package org.dbos.server.cli;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.dbos.kernel.messages.Mailboxes;
import org.dbos.kernel.messages.Message;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** `dbos send`, `dbos recv`, `dbos mailbox`: messages from the command line. */
final class MessageCommands {
  private MessageCommands() {}

  @Command(name = "send", mixinStandardHelpOptions = true, description = "Send a message to a mailbox; prints its id.")
  static final class Send implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(index = "0", paramLabel = "MAILBOX") String mailbox;
    @Parameters(index = "1", paramLabel = "MESSAGE") String message;
    @Option(names = "--key", paramLabel = "KEY", description = "Idempotency key: resending with it is a no-op.")
    String key;

    @Override
    public Integer call() {
      try (var c = client.connect()) {
        System.out.println(new Mailboxes(c.kernel()).send(c.session(), mailbox, message.getBytes(StandardCharsets.UTF_8), key));
      }
      return 0;
    }
  }

  @Command(name = "recv", mixinStandardHelpOptions = true,
      description = "Receive (and remove) messages from a mailbox, one per line; exit 1 if none came in time.")
  static final class Recv implements Callable<Integer> {
    @Mixin ClientOptions client;
    @Parameters(paramLabel = "MAILBOX") String mailbox;
    @Option(names = "--timeout", paramLabel = "DURATION", defaultValue = "0s",
        description = "Wait this long for a message (default: do not wait).") String timeout;
    @Option(names = {"-n", "--max"}, defaultValue = "1", description = "Receive up to this many (default: 1).") int max;

    @Override
    public Integer call() {
      var wait = timeout.equals("0") ? java.time.Duration.ZERO : UpCommand.parseDuration(timeout, "--timeout");
      try (var c = client.connect()) {
        List<Message> got = new Mailboxes(c.kernel()).recv(c.session(), mailbox, max, wait);
        for (Message m : got) {
          System.out.println(new String(m.body(), StandardCharsets.UTF_8));
        }
        if (got.isEmpty()) {
          System.err.println("dbos: no message in " + mailbox + (wait.isZero() ? "" : " within " + timeout));
          return 1;
        }
      }
      return 0;
    }
  }

  @Command(name = "mailbox", mixinStandardHelpOptions = true, description = "Create, list and remove mailboxes.",
      subcommands = {Mailbox.Create.class, Mailbox.Ls.class, Mailbox.Rm.class})
  static final class Mailbox {
    @Command(name = "create", mixinStandardHelpOptions = true, description = "Create a mailbox owned by you.")
    static final class Create implements Callable<Integer> {
      @Mixin ClientOptions client;
      @Parameters(paramLabel = "NAME") String name;

      @Override
      public Integer call() {
        try (var c = client.connect()) {
          new Mailboxes(c.kernel()).create(c.session(), name, null);
          System.out.println("created mailbox " + name);
        }
        return 0;
      }
    }

    @Command(name = "ls", mixinStandardHelpOptions = true, description = "List your mailboxes (all, for an admin).")
    static final class Ls implements Callable<Integer> {
      @Mixin ClientOptions client;

      @Override
      public Integer call() {
        try (var c = client.connect()) {
          List<List<String>> rows = new ArrayList<>();
          for (String[] r : new Mailboxes(c.kernel()).list(c.session())) {
            rows.add(List.of(r));
          }
          Table.print(System.out, List.of("mailbox", "owner", "messages"), rows);
        }
        return 0;
      }
    }

    @Command(name = "rm", mixinStandardHelpOptions = true, description = "Delete a mailbox and its undelivered messages.")
    static final class Rm implements Callable<Integer> {
      @Mixin ClientOptions client;
      @Parameters(paramLabel = "NAME") String name;

      @Override
      public Integer call() {
        try (var c = client.connect()) {
          new Mailboxes(c.kernel()).delete(c.session(), name);
        }
        return 0;
      }
    }
  }
}
