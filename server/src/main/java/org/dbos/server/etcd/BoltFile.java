package org.dbos.server.etcd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Writes a bbolt database file — etcd's backend format: version 2, 4 KiB pages, little-endian —
 * bucket after bucket, each from keys given in increasing bytewise order. This is what etcd streams
 * for a snapshot, so {@code etcdctl snapshot status} and {@code snapshot restore} read DBOS's.
 *
 * <p>Streaming: a bucket's leaf pages are written as they fill and only each page's first key is
 * kept, to build the branch pages above them at {@link Bucket#finish}. Pages 0 and 1 (the two meta
 * pages) and 2 (an empty freelist) are written last, by {@link #finish}, when the root is known.
 */
final class BoltFile {
  static final int PAGE = 4096;
  private static final int HEADER = 16;
  private static final int ELEMENT = 16;
  private static final short BRANCH = 0x01;
  private static final short LEAF = 0x02;
  private static final short META = 0x04;
  private static final short FREELIST = 0x10;
  /** A leaf element that is a nested bucket: its value is the bucket's header (root page, sequence). */
  private static final int BUCKET_LEAF = 0x01;
  private static final int MAGIC = 0xED0CDAED;
  private static final int VERSION = 2;
  private static final long FREELIST_PAGE = 2;

  private final FileChannel out;
  private long nextPage = FREELIST_PAGE + 1;
  private final List<byte[]> names = new ArrayList<>();
  private final List<Long> roots = new ArrayList<>();
  private Bucket current;

  BoltFile(FileChannel out) {
    this.out = out;
  }

  /** Starts a top-level bucket (the previous one must be finished); names must come in increasing order. */
  Bucket bucket(byte[] name) {
    if (current != null || !names.isEmpty() && Arrays.compareUnsigned(names.getLast(), name) >= 0) {
      throw new IllegalStateException("buckets must be written one at a time, in name order");
    }
    current = new Bucket(name);
    return current;
  }

  /** A bucket being written: put its keys in order, then finish it. */
  final class Bucket {
    private final byte[] name;
    private final List<byte[]> keys = new ArrayList<>();
    private final List<byte[]> values = new ArrayList<>();
    private int size = HEADER;
    /** The first key and page of every written page of the level below the root. */
    private final List<byte[]> firstKeys = new ArrayList<>();
    private final List<Long> pages = new ArrayList<>();

    private Bucket(byte[] name) {
      this.name = name;
    }

    byte[] name() {
      return name;
    }

    void put(byte[] key, byte[] value) throws IOException {
      if (!keys.isEmpty() && Arrays.compareUnsigned(keys.getLast(), key) >= 0) {
        throw new IllegalArgumentException("keys must be put in increasing order");
      }
      int add = ELEMENT + key.length + value.length;
      if (!keys.isEmpty() && size + add > PAGE) {
        flushLeaf();
      }
      keys.add(key);
      values.add(value);
      size += add;
    }

    private void flushLeaf() throws IOException {
      firstKeys.add(keys.isEmpty() ? new byte[0] : keys.getFirst());
      pages.add(writeNode(LEAF, 0, keys, values, null));
      keys.clear();
      values.clear();
      size = HEADER;
    }

    /** Writes the last leaf and the branch levels above the leaves. */
    void finish() throws IOException {
      if (!keys.isEmpty() || pages.isEmpty()) {
        flushLeaf(); // an empty bucket is one empty leaf
      }
      List<byte[]> levelKeys = new ArrayList<>(firstKeys);
      List<Long> levelPages = new ArrayList<>(pages);
      while (levelPages.size() > 1) {
        var upKeys = new ArrayList<byte[]>();
        var upPages = new ArrayList<Long>();
        var k = new ArrayList<byte[]>();
        var p = new ArrayList<Long>();
        int sz = HEADER;
        for (int i = 0; i < levelPages.size(); i++) {
          int add = ELEMENT + levelKeys.get(i).length;
          if (!k.isEmpty() && sz + add > PAGE) {
            upKeys.add(k.getFirst());
            upPages.add(writeNode(BRANCH, 0, k, null, p));
            k.clear();
            p.clear();
            sz = HEADER;
          }
          k.add(levelKeys.get(i));
          p.add(levelPages.get(i));
          sz += add;
        }
        upKeys.add(k.getFirst());
        upPages.add(writeNode(BRANCH, 0, k, null, p));
        levelKeys = upKeys;
        levelPages = upPages;
      }
      names.add(name);
      roots.add(levelPages.getFirst());
      current = null;
    }
  }

  /**
   * Writes one node (a leaf if {@code children} is null, its elements flagged {@code elementFlags}; else a
   * branch) at the next free page, with
   * overflow pages if it needs them; returns its page id. Each element's pos is the distance from the
   * element to its key, which follows all the elements.
   */
  private long writeNode(short flags, int elementFlags, List<byte[]> keys, List<byte[]> values, List<Long> children) throws IOException {
    int n = keys.size();
    int size = HEADER + n * ELEMENT;
    for (int i = 0; i < n; i++) {
      size += keys.get(i).length + (values != null ? values.get(i).length : 0);
    }
    int count = Math.max(1, (size + PAGE - 1) / PAGE);
    ByteBuffer b = ByteBuffer.allocate(count * PAGE).order(ByteOrder.LITTLE_ENDIAN);
    long id = nextPage;
    header(b, id, flags, n, count - 1);
    int data = HEADER + n * ELEMENT;
    for (int i = 0; i < n; i++) {
      int at = HEADER + i * ELEMENT;
      byte[] k = keys.get(i);
      if (children == null) {
        byte[] v = values.get(i);
        b.putInt(at, elementFlags).putInt(at + 4, data - at).putInt(at + 8, k.length).putInt(at + 12, v.length);
        b.put(data, k).put(data + k.length, v);
        data += k.length + v.length;
      } else {
        b.putInt(at, data - at).putInt(at + 4, k.length).putLong(at + 8, children.get(i));
        b.put(data, k);
        data += k.length;
      }
    }
    write(b, id);
    nextPage += count;
    return id;
  }

  private static void header(ByteBuffer b, long id, short flags, int count, int overflow) {
    b.putLong(0, id).putShort(8, flags).putShort(10, (short) count).putInt(12, overflow);
  }

  private void write(ByteBuffer b, long page) throws IOException {
    b.position(0);
    long at = page * PAGE;
    while (b.hasRemaining()) {
      at += out.write(b, at);
    }
  }

  /** Writes the root bucket's page, the freelist and both meta pages; returns the file's size. */
  long finish() throws IOException {
    if (current != null) {
      throw new IllegalStateException("bucket " + new String(current.name) + " is not finished");
    }
    var headers = new ArrayList<byte[]>();
    for (long root : roots) {
      headers.add(ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(root).putLong(0).array());
    }
    long root = writeNode(LEAF, BUCKET_LEAF, names, headers, null); // a few names: one page
    ByteBuffer free = ByteBuffer.allocate(PAGE).order(ByteOrder.LITTLE_ENDIAN);
    header(free, FREELIST_PAGE, FREELIST, 0, 0);
    write(free, FREELIST_PAGE);
    for (int txid = 0; txid < 2; txid++) {
      ByteBuffer m = ByteBuffer.allocate(PAGE).order(ByteOrder.LITTLE_ENDIAN);
      header(m, txid, META, 0, 0);
      m.putInt(16, MAGIC).putInt(20, VERSION).putInt(24, PAGE).putInt(28, 0)
          .putLong(32, root).putLong(40, 0) // the root bucket: its page, its sequence
          .putLong(48, FREELIST_PAGE).putLong(56, nextPage).putLong(64, txid);
      m.putLong(72, fnv64a(m, 16, 56));
      write(m, txid);
    }
    return nextPage * PAGE;
  }

  /** FNV-1a, 64 bits: bbolt's checksum of a meta page's fields before the checksum. */
  private static long fnv64a(ByteBuffer b, int from, int len) {
    long h = 0xcbf29ce484222325L;
    for (int i = from; i < from + len; i++) {
      h ^= b.get(i) & 0xff;
      h *= 0x100000001b3L;
    }
    return h;
  }
}
