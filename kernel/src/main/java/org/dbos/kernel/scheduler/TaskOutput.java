package org.dbos.kernel.scheduler;

import org.dbos.kernel.Session;
import org.dbos.kernel.files.Errno;
import org.dbos.kernel.files.FileHandle;
import org.dbos.kernel.files.FileSystem;
import org.dbos.kernel.files.FsException;

/**
 * A process task's stdout and stderr are DBFS files: {@code /tasks/ID/stdout} and {@code
 * /tasks/ID/stderr}, owned by the task's owner (mode 0640 in a 0750 directory), appended to as the
 * process writes, each chunk a durable write. So output is read like any file — `dbos logs`, `dbos fs
 * cat`, `tail` through the mount — with the file system's permissions, history and SQL views. A retried
 * task appends its next attempt's output to the same files.
 */
public final class TaskOutput implements AutoCloseable {
  public static final String STDOUT = "stdout";
  public static final String STDERR = "stderr";

  private final FileSystem fs;
  private final Session system;
  private final FileHandle out;
  private final FileHandle err;

  private TaskOutput(FileSystem fs, Session system, FileHandle out, FileHandle err) {
    this.fs = fs;
    this.system = system;
    this.out = out;
    this.err = err;
  }

  /** The path of a task's output stream ({@link #STDOUT} or {@link #STDERR}). */
  public static String path(long task, String stream) {
    return "/tasks/" + task + "/" + stream;
  }

  /** Opens (creating if needed) the task's output files for appending, as {@code system}, for the owner. */
  static TaskOutput open(FileSystem fs, Session system, long task, int uid, int gid) {
    directory(fs, system, "/tasks", 0755, 0, 0);
    directory(fs, system, "/tasks/" + task, 0750, uid, gid);
    return new TaskOutput(fs, system, file(fs, system, path(task, STDOUT), uid, gid), file(fs, system, path(task, STDERR), uid, gid));
  }

  /** Appends {@code len} bytes of {@code data} to {@code stream}; durable on return. */
  void append(String stream, byte[] data, int len) {
    fs.write(system, stream.equals(STDERR) ? err : out, 0, data, 0, len);
  }

  /**
   * Up to {@code max} bytes of a task's stream from {@code offset}, read as {@code s} (the file
   * system's permissions apply); empty at the end, or if the task never produced the file.
   */
  public static byte[] read(FileSystem fs, Session s, long task, String stream, long offset, int max) {
    FileHandle h;
    try {
      h = fs.open(s, path(task, stream), FileSystem.O_RDONLY, 0);
    } catch (FsException e) {
      if (e.errno() == Errno.ENOENT) {
        return new byte[0];
      }
      throw e;
    }
    try {
      return fs.read(s, h, offset, max);
    } finally {
      fs.close(h);
    }
  }

  @Override
  public void close() {
    fs.close(out);
    fs.close(err);
  }

  private static void directory(FileSystem fs, Session system, String path, int mode, int uid, int gid) {
    try {
      fs.mkdir(system, path, mode);
      fs.chown(system, path, uid, gid, false);
    } catch (FsException e) {
      if (e.errno() != Errno.EEXIST) {
        throw e;
      }
    }
  }

  private static FileHandle file(FileSystem fs, Session system, String path, int uid, int gid) {
    FileHandle h = fs.open(system, path, FileSystem.O_CREAT | FileSystem.O_WRONLY | FileSystem.O_APPEND, 0640);
    fs.chown(system, path, uid, gid, false);
    return h;
  }
}
