package org.dbos.kernel.files;

import java.io.OutputStream;
import java.util.Random;
import org.dbos.kernel.Kernel;
import org.dbos.kernel.Session;

/**
 * The process {@link FsCrashTest} kills: writes files, creates and fsyncs empty ones and renames them
 * in one thread, one large file in another, small files in four more ({@link FileSystem#createFile},
 * so in groups), and prints a line after each call that returned (so the data it names is durable).
 */
public final class FsCrashChild {
  static final int SMALL_WRITERS = 4;

  private FsCrashChild() {}

  static byte[] content(int i) {
    byte[] b = new byte[(i % 5 + 1) * 150_000 + i];
    new Random(i).nextBytes(b);
    return b;
  }

  static byte[] megabyte(int n) {
    byte[] b = new byte[1 << 20];
    new Random(1_000_000 + n).nextBytes(b);
    return b;
  }

  /** What writer {@code t}'s small file {@code i} holds. */
  static byte[] small(int t, int i) {
    byte[] b = new byte[1000 + i % 7 * 300];
    new Random(t * 1_000_000L + i).nextBytes(b);
    return b;
  }

  public static void main(String[] args) throws Exception {
    Kernel kernel = Kernel.connect(args[0], args[1], args[2]);
    FileSystem fs = FileSystem.of(kernel);
    Session s = kernel.openSession("admin", java.time.Duration.ofHours(1));
    Thread large = new Thread(() -> {
      FileHandle h = fs.create(s, "/crash/large", 0644);
      for (int n = 0; ; n++) {
        byte[] mb = megabyte(n);
        fs.write(s, h, (long) n << 20, mb, 0, mb.length);
        System.out.println("LARGE " + (n + 1));
      }
    });
    large.setDaemon(true);
    large.start();
    // writers of small files at once: their creates are written in groups, one COMMIT each
    for (int t = 0; t < SMALL_WRITERS; t++) {
      int writer = t;
      Thread small = new Thread(() -> {
        for (int i = 0; ; i++) {
          fs.createFile(s, "/crash/p" + writer + "/" + i, 0644, small(writer, i));
          System.out.println("PUT " + writer + " " + i);
        }
      });
      small.setDaemon(true);
      small.start();
    }
    for (int i = 0; ; i++) {
      try (OutputStream out = fs.openOutput(s, "/crash/f" + i, 0644)) {
        out.write(content(i));
      }
      System.out.println("DONE " + i);
      // created without a WAL flush; the fsync must flush it (nothing durable was committed since)
      FileHandle empty = fs.open(s, "/crash/e" + i, FileSystem.O_CREAT | FileSystem.O_WRONLY, 0644);
      fs.fsync(s, empty);
      fs.close(empty);
      System.out.println("SYNCED " + i);
      if (i % 2 == 1) {
        fs.rename(s, "/crash/f" + (i - 1), "/crash/d" + (i % 3) + "/g" + (i - 1));
        fs.sync(s); // renames are durable after a sync, as after fsync of the directory on ext4
        System.out.println("MOVED " + (i - 1));
        // a storm of directory moves: d0 -> d1/x -> back
        fs.rename(s, "/crash/d0", "/crash/d1/d0");
        fs.rename(s, "/crash/d1/d0", "/crash/d0");
      }
    }
  }
}
