package org.dbos.server.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.dbos.server.fuse.Mount;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import sun.misc.Signal;

@Command(name = "mount", mixinStandardHelpOptions = true,
    description = {"Mount DBFS, the file system in the OS database, at MOUNTPOINT (FUSE; Ctrl-C unmounts).",
        "Each process's requests run as the principal with its uid (root is admin); other uids are refused."})
final class MountCommand implements Callable<Integer> {
  @Mixin ClientOptions client;

  @Parameters(index = "0", paramLabel = "MOUNTPOINT", description = "An existing empty directory.")
  Path mountpoint;

  private boolean unmounted;

  @Override
  public Integer call() throws InterruptedException {
    var c = client.connect();
    Mount mount;
    try {
      mount = Mount.mount(c.kernel(), mountpoint);
    } catch (RuntimeException e) {
      c.close();
      throw e;
    }
    // Ctrl-C is how this command ends, so it unmounts and exits 0 rather than 130. SIGTERM, SIGHUP
    // (and a SIGINT this process was started ignoring, which stays ignored) end it through the hook.
    var interrupted = new CountDownLatch(1);
    Signal.handle(new Signal("INT"), sig -> interrupted.countDown());
    Runtime.getRuntime().addShutdownHook(new Thread(() -> unmount(mount, c), "dbos-unmount"));
    System.out.println("DBFS mounted at " + mountpoint.toAbsolutePath() + " (Ctrl-C unmounts)");
    System.out.flush();
    interrupted.await();
    unmount(mount, c);
    return 0;
  }

  /** Once, from main or the shutdown hook; a second caller waits until the first is done. */
  private synchronized void unmount(Mount mount, ClientOptions.Client c) {
    if (!unmounted) {
      unmounted = true;
      try {
        mount.close();
      } finally {
        c.close();
      }
    }
  }
}
