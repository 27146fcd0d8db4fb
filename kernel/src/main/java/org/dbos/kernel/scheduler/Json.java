package org.dbos.kernel.scheduler;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.Map;
import org.dbos.kernel.SyscallException;

/** The few JSON conversions the scheduler needs. */
final class Json {
  static final ObjectMapper MAPPER = new ObjectMapper();

  private Json() {}

  static String strings(List<String> l) {
    return write(l);
  }

  static String map(Map<String, String> m) {
    return write(m == null ? Map.of() : m);
  }

  static List<String> toStrings(String json) {
    try {
      return MAPPER.readValue(json, new TypeReference<List<String>>() {});
    } catch (JsonProcessingException e) {
      throw SyscallException.invalid("not a JSON array of strings: " + json);
    }
  }

  static void validate(String json) {
    try {
      MAPPER.readTree(json);
    } catch (JsonProcessingException e) {
      throw SyscallException.invalid("not valid JSON: " + e.getOriginalMessage());
    }
  }

  private static String write(Object o) {
    try {
      return MAPPER.writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
