package org.dbos.server.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.dbos.server.fuse.Mount;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(name = "mount", mixinStandardHelpOptions = true,
    description = {"Mount DBFS, the file system in the OS database, at MOUNTPOINT (FUSE; Ctrl-C unmounts).",
        "Each process's requests run as the principal with its uid (root is admin); other uids are refused."})
final class MountCommand implements Callable<Integer> {
  @Mixin ClientOptions client;

  @Parameters(index = "0", paramLabel = "MOUNTPOINT", description = "An existing empty directory.")
  Path mountpoint;

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
    var unmounted = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      mount.close();
      c.close();
      unmounted.countDown();
    }, "dbos-unmount"));
    System.out.println("DBFS mounted at " + mountpoint.toAbsolutePath() + " (Ctrl-C unmounts)");
    System.out.flush();
    unmounted.await();
    return 0;
  }
}
