package org.dbos.server.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.dbos.kernel.files.Names;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Local names that are not UTF-8 are made, listed and linked with their bytes kept (checked with ls). */
class LocalPathsTest {
  @TempDir Path dir;

  /** Latin-1 "café": the byte 0xe9 alone, which is not UTF-8. */
  static final String CAFE = Names.string("caf\u00e9".getBytes(StandardCharsets.ISO_8859_1));

  @Test
  void namesThatAreNotUtf8AreMadeAndReadByTheirBytes() throws Exception {
    Path made = Files.createDirectory(LocalPaths.child(dir, CAFE));
    Files.writeString(LocalPaths.child(made, "a b%41"), "x");
    assertArrayEquals("./caf\u00e9\n./caf\u00e9/a b%41\n".getBytes(StandardCharsets.ISO_8859_1), find(dir),
        "the names' bytes as given; spaces and percent signs are names' own");
    try (var list = Files.list(dir)) {
      assertEquals(List.of(CAFE), list.map(LocalPaths::name).toList());
    }
    Path absolute = LocalPaths.of(dir + "/" + CAFE + "/a b%41");
    assertEquals("x", Files.readString(absolute));
    assertEquals(LocalPaths.text(absolute), dir + "/" + CAFE + "/a b%41");
  }

  @Test
  void aSymbolicLinkKeepsItsTargetsBytesAndStaysRelative() throws Exception {
    Files.createDirectory(LocalPaths.child(dir, CAFE));
    String target = "../" + CAFE + "/f";
    Path link = Files.createSymbolicLink(dir.resolve("link"), LocalPaths.target(target));
    assertFalse(Files.readSymbolicLink(link).isAbsolute());
    assertEquals(target, LocalPaths.text(Files.readSymbolicLink(link)));
    assertEquals("/" + CAFE, LocalPaths.text(LocalPaths.target("/" + CAFE)));
  }

  @Test
  void aRelativeArgumentIsUnderTheWorkingDirectory() {
    assertEquals(Path.of("").toAbsolutePath().resolve("x/y"), LocalPaths.of("x/y"));
    assertEquals(Path.of("/tmp/x"), LocalPaths.of("/tmp/x"));
  }

  /** What find prints of everything under {@code dir}, as bytes. */
  private static byte[] find(Path dir) throws Exception {
    Process p = new ProcessBuilder("find", ".", "-mindepth", "1").directory(dir.toFile()).start();
    byte[] out = p.getInputStream().readAllBytes();
    assertEquals(0, p.waitFor(), new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
    return out;
  }
}
