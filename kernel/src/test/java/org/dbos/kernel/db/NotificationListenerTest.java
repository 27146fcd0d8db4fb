package org.dbos.kernel.db;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.sql.Connection;
import org.dbos.kernel.testing.TestDatabase;
import org.junit.jupiter.api.Test;

class NotificationListenerTest {
  /** Fails when a pgjdbc upgrade moves the internals the listener relies on to hand over a wake-up at once (pooled, as it runs). */
  @Test
  void armsPgjdbcsCheckDelaySoAWakeUpSkipsTheOneMillisecondPeek() throws Exception {
    TestDatabase.Url db = TestDatabase.fresh();
    try (Database d = Database.connect(db.url(), db.user(), db.password(), 1, null); Connection c = d.connection()) {
      assertTrue(NotificationListener.skipTrailingPeek(c));
    }
  }
}
