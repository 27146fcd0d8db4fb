package org.dbos.server.cli;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/** Prints rows as an aligned text table, like psql's default output. */
final class Table {
  private Table() {}

  static void print(PrintStream out, List<String> header, List<List<String>> rows) {
    int[] width = new int[header.size()];
    for (int i = 0; i < header.size(); i++) {
      width[i] = header.get(i).length();
    }
    List<List<String>> shown = new ArrayList<>(rows.size());
    for (List<String> row : rows) {
      var cells = new ArrayList<String>(row.size());
      for (int i = 0; i < row.size(); i++) {
        String v = row.get(i) == null ? "" : row.get(i).replace("\n", "\\n");
        cells.add(v);
        width[i] = Math.max(width[i], v.length());
      }
      shown.add(cells);
    }
    out.println(line(header, width));
    var rule = new StringBuilder();
    for (int i = 0; i < width.length; i++) {
      rule.append(i == 0 ? "" : "-+-").append("-".repeat(width[i]));
    }
    out.println(rule);
    for (List<String> row : shown) {
      out.println(line(row, width));
    }
  }

  private static String line(List<String> cells, int[] width) {
    var sb = new StringBuilder();
    for (int i = 0; i < cells.size(); i++) {
      if (i > 0) {
        sb.append(" | ");
      }
      String c = cells.get(i);
      sb.append(c);
      if (i < cells.size() - 1) {
        sb.append(" ".repeat(width[i] - c.length()));
      }
    }
    return sb.toString();
  }

  static String bytes(long n) {
    if (n < 1024) {
      return n + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double v = n;
    int u = -1;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return String.format("%.1f %s", v, units[u]);
  }
}
