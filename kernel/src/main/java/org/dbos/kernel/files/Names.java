package org.dbos.kernel.files;

import java.nio.charset.StandardCharsets;

/**
 * Names and paths between the bytes DBFS stores (any bytes but '/' and NUL in a name) and Java
 * Strings, as Python's os.fsdecode and os.fsencode do (PEP 383, "surrogateescape"): UTF-8, except that
 * a byte that is not part of a well-formed UTF-8 sequence is the lone surrogate U+DC00 + byte (bytes
 * 0x80..0xFF only, so U+DC80..U+DCFF). Valid UTF-8 reads as plain text; every byte string has exactly
 * one String, and {@link #bytes} accepts only that String.
 */
public final class Names {
  private Names() {}

  /** The String of {@code raw}: UTF-8, each byte outside a well-formed sequence as U+DC00 + byte. */
  public static String string(byte[] raw) {
    if (isUtf8(raw)) {
      return new String(raw, StandardCharsets.UTF_8);
    }
    var out = new StringBuilder(raw.length);
    int i = 0;
    while (i < raw.length) {
      int b = raw[i] & 0xff;
      if (b < 0x80) {
        out.append((char) b);
        i++;
        continue;
      }
      int n = sequence(raw, i);
      if (n == 0) {
        out.append((char) (0xdc00 + b));
        i++;
        continue;
      }
      int cp = b & (0xff >> (n + 1));
      for (int k = 1; k < n; k++) {
        cp = cp << 6 | raw[i + k] & 0x3f;
      }
      out.appendCodePoint(cp);
      i += n;
    }
    return out.toString();
  }

  /**
   * The bytes of {@code s}: UTF-8, each U+DC80..U+DCFF the byte it stands for. EINVAL for any other lone
   * surrogate, and for escapes that spell well-formed UTF-8 (that String is not the one of its bytes).
   */
  public static byte[] bytes(String s) {
    if (!hasSurrogate(s)) {
      return s.getBytes(StandardCharsets.UTF_8);
    }
    var out = new java.io.ByteArrayOutputStream(s.length() + 8);
    boolean escaped = false;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < 0x80) {
        out.write(c);
      } else if (c < 0x800) {
        out.write(0xc0 | c >> 6);
        out.write(0x80 | c & 0x3f);
      } else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
        int cp = Character.toCodePoint(c, s.charAt(++i));
        out.write(0xf0 | cp >> 18);
        out.write(0x80 | cp >> 12 & 0x3f);
        out.write(0x80 | cp >> 6 & 0x3f);
        out.write(0x80 | cp & 0x3f);
      } else if (c >= 0xdc80 && c <= 0xdcff) {
        out.write(c - 0xdc00);
        escaped = true;
      } else if (Character.isSurrogate(c)) {
        throw new FsException(Errno.EINVAL, "a lone surrogate that stands for no byte in a name: U+"
            + Integer.toHexString(c).toUpperCase());
      } else {
        out.write(0xe0 | c >> 12);
        out.write(0x80 | c >> 6 & 0x3f);
        out.write(0x80 | c & 0x3f);
      }
    }
    byte[] raw = out.toByteArray();
    if (escaped && !string(raw).equals(s)) {
      throw new FsException(Errno.EINVAL, "escaped bytes in a name that are UTF-8 text: write the text");
    }
    return raw;
  }

  private static boolean hasSurrogate(String s) {
    for (int i = 0; i < s.length(); i++) {
      if (Character.isSurrogate(s.charAt(i))) {
        return true;
      }
    }
    return false;
  }

  /**
   * {@code path} for people, logs and the audit log (text): each byte that is not UTF-8 as \xNN, as
   * Python's repr of bytes shows it (text only: a name may itself hold a backslash and "xff").
   */
  public static String shown(String path) {
    int i = 0;
    while (i < path.length() && !isEscape(path.charAt(i))) {
      i++;
    }
    if (i == path.length()) {
      return path;
    }
    var out = new StringBuilder(path.length() + 8).append(path, 0, i);
    for (; i < path.length(); i++) {
      char c = path.charAt(i);
      if (isEscape(c)) {
        out.append("\\x").append(Character.forDigit((c >> 4) & 0xf, 16)).append(Character.forDigit(c & 0xf, 16));
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }

  private static boolean isEscape(char c) {
    return c >= 0xdc80 && c <= 0xdcff;
  }

  /** Whether {@code raw} is well-formed UTF-8 (then {@link #string} is {@code new String(raw, UTF_8)}). */
  public static boolean isUtf8(byte[] raw) {
    int i = 0;
    while (i < raw.length) {
      if (raw[i] >= 0) {
        i++;
        continue;
      }
      int k = sequence(raw, i);
      if (k == 0) {
        return false;
      }
      i += k;
    }
    return true;
  }

  /** The length of the well-formed UTF-8 sequence at raw[i] (Unicode table 3-7), or 0. */
  private static int sequence(byte[] raw, int i) {
    int b = raw[i] & 0xff;
    int n;
    int lo = 0x80;
    int hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) {
      n = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
      n = 3;
      if (b == 0xe0) {
        lo = 0xa0;
      } else if (b == 0xed) {
        hi = 0x9f; // not the surrogates
      }
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 4;
      if (b == 0xf0) {
        lo = 0x90;
      } else if (b == 0xf4) {
        hi = 0x8f;
      }
    } else {
      return 0;
    }
    if (i + n > raw.length) {
      return 0;
    }
    int second = raw[i + 1] & 0xff;
    if (second < lo || second > hi) {
      return 0;
    }
    for (int k = 2; k < n; k++) {
      if ((raw[i + k] & 0xc0) != 0x80) {
        return 0;
      }
    }
    return n;
  }
}
