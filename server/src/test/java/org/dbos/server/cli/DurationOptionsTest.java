package org.dbos.server.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import org.dbos.kernel.SyscallException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Durations on the command line: zero where it means "now" or "none", refused where a period must pass. */
class DurationOptionsTest {
  @Test
  void durationsParseWithUnitsOrIso() {
    assertEquals(Duration.ofMillis(500), UpCommand.parseDuration("500ms", "--x"));
    assertEquals(Duration.ofDays(7), UpCommand.parseDuration("7d", "--x"));
    assertEquals(Duration.ofMinutes(2), UpCommand.parseDuration("PT2M", "--x"));
    assertEquals(Duration.ZERO, UpCommand.parseDuration("0s", "--x"));
    assertEquals(Duration.ZERO, UpCommand.parseDuration("PT0S", "--x"));
    for (String bad : new String[] {"-PT1S", "soon", "5", "5 parsecs", ""}) {
      var e = assertThrows(SyscallException.class, () -> UpCommand.parseDuration(bad, "--x"), bad);
      assertTrue(e.getMessage().contains("--x wants a duration"), e.getMessage());
    }
    var zero = assertThrows(SyscallException.class, () -> UpCommand.positiveDuration("0s", "--every"));
    assertTrue(zero.getMessage().contains("--every wants a positive duration"), zero.getMessage());
  }

  @Test
  void upRefusesZeroPeriodsBeforeStartingAnything(@TempDir Path dir) {
    for (String option : new String[] {"--heartbeat", "--dead-after", "--fs-retention"}) {
      PrintStream err = System.err;
      var e = new ByteArrayOutputStream();
      int exit;
      try {
        System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
        exit = Main.run("up", "--data-dir", dir.resolve("node").toString(), option, "0s");
      } finally {
        System.setErr(err);
      }
      assertEquals(2, exit, option);
      assertTrue(e.toString(StandardCharsets.UTF_8).contains(option + " wants a positive duration"), e.toString(StandardCharsets.UTF_8));
      assertTrue(!dir.resolve("node").toFile().exists(), "nothing was created for " + option);
    }
  }
}
