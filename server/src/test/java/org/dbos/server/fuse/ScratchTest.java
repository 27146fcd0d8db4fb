package org.dbos.server.fuse;

import org.junit.jupiter.api.Test;

class ScratchTest {
  @Test
  void scratch() throws Exception {
    MountTest.boot();
    try {
      System.out.println(MountTest.sh(MountTest.work, System.getProperty("script")).out());
      MountTest.kernel.database().transaction(c -> {
        var rs = c.createStatement().executeQuery("SELECT call, count(*) FROM audit_log GROUP BY 1 ORDER BY 2 DESC");
        while (rs.next()) System.out.println(rs.getString(1) + " " + rs.getLong(2));
        return null;
      });
    } finally {
      MountTest.close();
    }
  }
}
