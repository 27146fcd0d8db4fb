package org.dbos.kernel.kv;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/** etcd's key-range conventions over byte strings, and the SQL condition each range becomes. */
final class KeyRanges {
  private KeyRanges() {}

  static final byte[] ZERO = {0};

  static boolean single(byte[] end) {
    return end == null || end.length == 0;
  }

  static boolean fromKey(byte[] end) {
    return end != null && end.length == 1 && end[0] == 0;
  }

  /** Whether {@code k} lies in [key, end) under etcd's conventions. */
  static boolean contains(byte[] key, byte[] end, byte[] k) {
    if (single(end)) {
      return Arrays.equals(key, k);
    }
    if (fromKey(end)) {
      return Arrays.compareUnsigned(k, key) >= 0;
    }
    return Arrays.compareUnsigned(k, key) >= 0 && Arrays.compareUnsigned(k, end) < 0;
  }

  /** Whether [a, aEnd) and [b, bEnd) share a key. */
  static boolean overlaps(byte[] a, byte[] aEnd, byte[] b, byte[] bEnd) {
    if (single(aEnd)) {
      return contains(b, bEnd, a);
    }
    if (single(bEnd)) {
      return contains(a, aEnd, b);
    }
    boolean aBeforeBEnd = fromKey(bEnd) || Arrays.compareUnsigned(a, bEnd) < 0;
    boolean bBeforeAEnd = fromKey(aEnd) || Arrays.compareUnsigned(b, aEnd) < 0;
    return aBeforeBEnd && bBeforeAEnd;
  }

  /** The smallest key greater than every key with this prefix (etcd's GetPrefixRangeEnd); "\0" if none. */
  static byte[] prefixEnd(byte[] prefix) {
    byte[] end = prefix.clone();
    for (int i = end.length - 1; i >= 0; i--) {
      if ((end[i] & 0xff) < 0xff) {
        end[i]++;
        return Arrays.copyOf(end, i + 1);
      }
    }
    return ZERO.clone();
  }

  /** The SQL condition on column {@code key} for the range; appends its parameters to {@code args}. */
  static String condition(byte[] key, byte[] end, List<Object> args) {
    if (single(end)) {
      args.add(key);
      return "key = ?";
    }
    if (fromKey(end)) {
      args.add(key);
      return "key >= ?";
    }
    args.add(key);
    args.add(end);
    return "key >= ? AND key < ?";
  }

  /**
   * The object a rights check names for a range. One key is {@code "kv:" + text(key)}; any other range
   * is {@code "kv:" + text(p) + "\\*"}, p the longest prefix every key in it shares ("" for an
   * open-ended range). No key's text contains a backslash not followed by x, so a range object never
   * equals a key's: an exact grant on key "foo" covers that key only, while a prefix grant on "foo"
   * covers the key, the keys extending it and the ranges within it.
   */
  static String object(byte[] key, byte[] end) {
    return single(end) ? keyObject(key) : rangeObject(sharedPrefix(key, end));
  }

  static String keyObject(byte[] key) {
    return "kv:" + text(key);
  }

  static String rangeObject(byte[] prefix) {
    return "kv:" + text(prefix) + RANGE_MARK;
  }

  private static final String RANGE_MARK = "\\*";

  /** The longest prefix every key of [key, end) shares. */
  static byte[] sharedPrefix(byte[] key, byte[] end) {
    if (single(end) || Arrays.equals(end, prefixEnd(key))) {
      return key;
    }
    if (fromKey(end)) {
      return new byte[0];
    }
    int n = Arrays.mismatch(key, end);
    return Arrays.copyOf(key, n < 0 ? key.length : Math.min(n, key.length));
  }

  /** The longest common prefix of two byte strings. */
  static byte[] commonPrefix(byte[] a, byte[] b) {
    int n = Arrays.mismatch(a, b);
    return n < 0 ? a : Arrays.copyOf(a, n);
  }

  private static final char[] HEX = "0123456789abcdef".toCharArray();

  /**
   * A key as object-name text: itself when it is UTF-8 without control characters or backslashes
   * (grants on such prefixes match byte for byte), else with every byte outside printable ASCII, and
   * the backslash, written as \xNN.
   */
  static String text(byte[] b) {
    boolean plain = true;
    for (byte x : b) {
      if ((x & 0xff) < 0x20 || x == 0x7f || x == '\\') {
        plain = false;
        break;
      }
    }
    if (plain) {
      try {
        return StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(b)).toString();
      } catch (java.nio.charset.CharacterCodingException e) {
        // not UTF-8: escape below
      }
    }
    var sb = new StringBuilder(b.length * 4);
    for (byte x : b) {
      int v = x & 0xff;
      if (v >= 0x20 && v < 0x7f && v != '\\') {
        sb.append((char) v);
      } else { // not String.format: a binary key (etcdctl check perf's) would spend most of a put's CPU there
        sb.append('\\').append('x').append(HEX[v >> 4]).append(HEX[v & 0xf]);
      }
    }
    return sb.toString();
  }

  /** The key {@link #text} wrote: escaped text holds a backslash, plain text never does. */
  static byte[] bytes(String text) {
    if (text.indexOf('\\') < 0) {
      return text.getBytes(StandardCharsets.UTF_8);
    }
    var out = new java.io.ByteArrayOutputStream(text.length());
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == '\\' && i + 3 < text.length() && text.charAt(i + 1) == 'x') {
        out.write(Integer.parseInt(text, i + 2, i + 4, 16));
        i += 3;
      } else {
        out.write(c);
      }
    }
    return out.toByteArray();
  }
}
