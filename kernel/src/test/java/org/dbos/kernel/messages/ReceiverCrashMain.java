package org.dbos.kernel.messages;

import java.nio.file.Files;
import java.nio.file.Path;
import org.dbos.kernel.Kernel;

/**
 * A receiver in its own JVM, for a test that SIGKILLs it: {@code main(url, user, password, adminSecretFile, mailbox)}
 * takes a message in a transaction, says so, and hangs before committing.
 */
public final class ReceiverCrashMain {
  private ReceiverCrashMain() {}

  public static void main(String[] args) throws Exception {
    Kernel k = Kernel.connect(args[0], args[1], args[2]);
    var s = k.login("admin", Files.readString(Path.of(args[3])).strip());
    var mail = new Mailboxes(k);
    k.callChecked(s, "test.recv", "mailbox:" + args[4], false, tx -> {
      var got = mail.recv(tx, args[4], 10);
      System.out.println("took " + got.size());
      System.out.flush();
      try {
        Thread.sleep(Long.MAX_VALUE);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return null;
    });
  }
}
