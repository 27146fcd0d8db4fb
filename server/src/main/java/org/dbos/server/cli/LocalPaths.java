package org.dbos.server.cli;

import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.nio.file.Path;
import java.util.Arrays;
import org.dbos.kernel.files.Names;

/**
 * Local paths whose names are any bytes, as DBFS's are. Java turns a {@link Path} into text and back
 * through UTF-8, so a name that is not UTF-8 (Latin-1 {@code caf\xe9}) could be neither made nor read
 * by name. A {@code file:} URI carries a path's bytes exactly, percent-encoded, both ways ({@link
 * Path#toUri()} and {@link Path#of(URI)}), so names go through one. Names here are in {@link Names}
 * form: UTF-8, each byte that is not as U+DC00 + byte.
 */
final class LocalPaths {
  private LocalPaths() {}

  /** The local path a command-line argument names (relative to the working directory). */
  static Path of(String arg) {
    return Path.of("").toAbsolutePath().resolve(target(arg));
  }

  /** {@code dir}'s entry {@code name}. */
  static Path child(Path dir, String name) {
    return dir.resolve(relative(name));
  }

  /** The last name of {@code p}, every byte kept. */
  static String name(Path p) {
    return Names.string(bytes(p.getFileName()));
  }

  /** A symbolic link's target as stored: relative stays relative. */
  static Path target(String target) {
    return target.startsWith("/") ? fromBytes(Names.bytes(target)) : relative(target);
  }

  /** What {@code p} holds, every byte kept (a relative path stays relative). */
  static String text(Path p) {
    return Names.string(bytes(p));
  }

  /**
   * A relative path with {@code path}'s bytes, built name by name: each name is the last of an
   * absolute path made from its bytes ({@link Path#relativize} would fold "..").
   */
  private static Path relative(String path) {
    Path p = Path.of("");
    for (String name : path.split("/")) {
      if (!name.isEmpty()) {
        p = p.resolve(fromBytes(slash(Names.bytes(name))).getFileName());
      }
    }
    return p;
  }

  private static byte[] slash(byte[] relative) {
    byte[] b = new byte[relative.length + 1];
    b[0] = '/';
    System.arraycopy(relative, 0, b, 1, relative.length);
    return b;
  }

  private static Path fromBytes(byte[] absolute) {
    var uri = new StringBuilder("file://");
    for (byte b : absolute) {
      int c = b & 0xff;
      if (c == '/' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || "-._~".indexOf(c) >= 0) {
        uri.append((char) c);
      } else {
        uri.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
            .append(Character.toUpperCase(Character.forDigit(c & 0xf, 16)));
      }
    }
    return Path.of(URI.create(uri.toString()));
  }

  /** The bytes of {@code p}, absolute or relative, without the trailing slash a directory's URI has. */
  private static byte[] bytes(Path p) {
    boolean absolute = p.isAbsolute();
    String raw = (absolute ? p : Path.of("/").resolve(p)).toUri().getRawPath();
    var out = new ByteArrayOutputStream(raw.length());
    for (int i = absolute ? 0 : 1; i < raw.length(); i++) {
      char c = raw.charAt(i);
      if (c == '%') {
        out.write(Integer.parseInt(raw, i + 1, i + 3, 16));
        i += 2;
      } else {
        out.write(c);
      }
    }
    byte[] b = out.toByteArray();
    int n = b.length;
    while (n > 1 && b[n - 1] == '/') {
      n--;
    }
    return n == b.length ? b : Arrays.copyOf(b, n);
  }
}
