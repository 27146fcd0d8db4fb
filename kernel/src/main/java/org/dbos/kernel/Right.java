package org.dbos.kernel;

/** The rights a grant can confer on objects named by a prefix ({@code kv:/registry/}, {@code queue:}, …). */
public enum Right {
  READ, WRITE, EXECUTE, ADMIN
}
