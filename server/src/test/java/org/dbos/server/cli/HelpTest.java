package org.dbos.server.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The README's promise: `dbos --help` and `dbos COMMAND [SUBCOMMAND] --help` list every option. */
class HelpTest {
  @Test
  void everyCommandAndSubcommandAnswersHelp() {
    var paths = new ArrayList<List<String>>();
    collect(new CommandLine(new Main()), new ArrayList<>(), paths);
    assertTrue(paths.size() > 30, "commands found: " + paths.size());
    for (List<String> path : paths) {
      var args = new ArrayList<>(path);
      args.add("--help");
      PrintStream out = System.out;
      var o = new ByteArrayOutputStream();
      int exit;
      try {
        System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
        exit = Main.run(args.toArray(new String[0]));
      } finally {
        System.setOut(out);
      }
      String usage = o.toString(StandardCharsets.UTF_8);
      assertEquals(0, exit, String.join(" ", args));
      assertTrue(usage.startsWith(("Usage: dbos " + String.join(" ", path)).strip()), String.join(" ", args) + ":\n" + usage);
    }
  }

  private static void collect(CommandLine cmd, List<String> path, List<List<String>> out) {
    out.add(List.copyOf(path));
    cmd.getSubcommands().forEach((name, sub) -> {
      if (!name.equals("help") && sub.getCommandName().equals(name)) { // aliases once
        var next = new ArrayList<>(path);
        next.add(name);
        collect(sub, next, out);
      }
    });
  }
}
