package org.dbos.kernel.scheduler;

import java.time.DateTimeException;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.temporal.ChronoUnit;
import java.util.BitSet;
import java.util.Map;
import org.dbos.kernel.SyscallException;

/**
 * A five-field cron expression ({@code minute hour day-of-month month day-of-week}) in a time zone.
 * Fields take {@code *}, numbers, ranges {@code a-b}, steps {@code * /n} and {@code a-b/n}, and lists;
 * months and weekdays also take names (JAN, MON); day-of-week 0 and 7 are Sunday. As in Vixie cron,
 * when both day fields are restricted a day matches if either does. Shortcuts: @yearly, @monthly,
 * @weekly, @daily, @hourly.
 */
public record Cron(String spec, ZoneId zone, BitSet minutes, BitSet hours, BitSet days, BitSet months,
                   BitSet weekdays, boolean anyDay, boolean anyWeekday) {
  private static final Map<String, String> SHORTCUTS = Map.of("@yearly", "0 0 1 1 *", "@annually", "0 0 1 1 *",
      "@monthly", "0 0 1 * *", "@weekly", "0 0 * * 0", "@daily", "0 0 * * *", "@midnight", "0 0 * * *",
      "@hourly", "0 * * * *");
  private static final String[] MONTHS = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
      "NOV", "DEC"};
  private static final String[] DAYS = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

  /** Parses {@code spec} in {@code zone}; fails with INVALID_ARGUMENT saying which field is wrong. */
  public static Cron parse(String spec, String zone) {
    ZoneId z;
    try {
      z = ZoneId.of(zone == null ? "UTC" : zone);
    } catch (DateTimeException e) {
      throw SyscallException.invalid("unknown time zone '" + zone + "'");
    }
    if (spec == null) {
      throw SyscallException.invalid("empty cron expression");
    }
    String s = SHORTCUTS.getOrDefault(spec.trim().toLowerCase(), spec.trim());
    String[] f = s.split("\\s+");
    if (f.length != 5) {
      throw SyscallException.invalid("cron expression '" + spec + "' must have 5 fields (minute hour day month weekday), has " + f.length);
    }
    BitSet wd = field(spec, "day-of-week", f[4], 0, 7, DAYS);
    if (wd.get(7)) {
      wd.set(0);
      wd.clear(7);
    }
    Cron c = new Cron(spec, z, field(spec, "minute", f[0], 0, 59, null), field(spec, "hour", f[1], 0, 23, null),
        field(spec, "day-of-month", f[2], 1, 31, null), field(spec, "month", f[3], 1, 12, MONTHS), wd,
        f[2].equals("*"), f[4].equals("*"));
    c.next(ZonedDateTime.now(z)); // rejects expressions that never fire (30 February)
    return c;
  }

  private static BitSet field(String spec, String what, String text, int min, int max, String[] names) {
    BitSet out = new BitSet(max + 1);
    for (String part : text.split(",", -1)) {
      try {
        int step = 1;
        String range = part;
        int slash = part.indexOf('/');
        if (slash >= 0) {
          step = Integer.parseInt(part.substring(slash + 1));
          range = part.substring(0, slash);
          if (step <= 0) {
            throw new NumberFormatException();
          }
        }
        int lo;
        int hi;
        if (range.equals("*")) {
          lo = min;
          hi = max;
        } else if (range.contains("-")) {
          String[] ab = range.split("-", 2);
          lo = value(ab[0], names, min);
          hi = value(ab[1], names, min);
        } else {
          lo = value(range, names, min);
          hi = slash >= 0 ? max : lo;
        }
        if (lo < min || hi > max || lo > hi) {
          throw new NumberFormatException();
        }
        for (int v = lo; v <= hi; v += step) {
          out.set(v);
        }
      } catch (NumberFormatException | ArrayIndexOutOfBoundsException e) {
        throw SyscallException.invalid("cron expression '" + spec + "': bad " + what + " field '" + text
            + "' (allowed " + min + "-" + max + ")");
      }
    }
    return out;
  }

  private static int value(String s, String[] names, int min) {
    if (names != null) {
      for (int i = 0; i < names.length; i++) {
        if (names[i].equalsIgnoreCase(s)) {
          return names == MONTHS ? i + 1 : i;
        }
      }
    }
    return Integer.parseInt(s);
  }

  private boolean dayMatches(ZonedDateTime t) {
    boolean dom = days.get(t.getDayOfMonth());
    boolean dow = weekdays.get(t.getDayOfWeek().getValue() % 7);
    if (anyDay || anyWeekday) {
      return dom && dow;
    }
    return dom || dow;
  }

  /**
   * The first tick strictly after {@code after}, in this schedule's zone. Wall-clock times skipped by a
   * daylight-saving jump do not fire; repeated ones fire once (the first).
   */
  public ZonedDateTime next(ZonedDateTime after) {
    ZonedDateTime t = after.withZoneSameInstant(zone).truncatedTo(ChronoUnit.MINUTES).plusMinutes(1);
    ZonedDateTime limit = t.plusYears(5);
    while (t.isBefore(limit)) {
      if (!months.get(t.getMonthValue())) {
        t = t.withDayOfMonth(1).truncatedTo(ChronoUnit.DAYS).plusMonths(1);
      } else if (!dayMatches(t)) {
        t = t.truncatedTo(ChronoUnit.DAYS).plusDays(1);
      } else if (!hours.get(t.getHour())) {
        t = t.truncatedTo(ChronoUnit.HOURS).plusHours(1);
      } else if (!minutes.get(t.getMinute())) {
        t = t.plusMinutes(1);
      } else {
        return t;
      }
    }
    throw SyscallException.invalid("cron expression '" + spec + "' never fires");
  }
}
