package org.dbos.kernel.kv;

import java.util.Arrays;
import java.util.List;

/**
 * The values of the etcd v3 data model as the kernel sees them: requests, responses, key-values and
 * events. Keys and values are byte strings compared bytewise (unsigned), as in etcd.
 */
public final class Kv {
  private Kv() {}

  /** The errors etcd clients match on: the text after etcd's "etcdserver: " prefix, exactly. */
  public static final String ERR_COMPACTED = "mvcc: required revision has been compacted";
  public static final String ERR_FUTURE_REV = "mvcc: required revision is a future revision";
  public static final String ERR_KEY_NOT_FOUND = "key not found";
  public static final String ERR_EMPTY_KEY = "key is not provided";
  public static final String ERR_VALUE_PROVIDED = "value is provided";
  public static final String ERR_LEASE_PROVIDED = "lease is provided";
  public static final String ERR_TOO_MANY_OPS = "too many operations in txn request";
  public static final String ERR_DUPLICATE_KEY = "duplicate key given in txn request";
  public static final String ERR_LEASE_NOT_FOUND = "requested lease not found";
  public static final String ERR_LEASE_EXISTS = "lease already exists";
  public static final String ERR_LEASE_TTL_TOO_LARGE = "too large lease TTL";
  public static final String ERR_ROLE_EMPTY = "role name is empty";
  public static final String ERR_ROLE_EXISTS = "role name already exists";
  public static final String ERR_ROLE_NOT_FOUND = "role name not found";
  public static final String ERR_USER_NOT_FOUND = "user name not found";
  public static final String ERR_ROLE_NOT_GRANTED = "role is not granted to the user";
  public static final String ERR_PERMISSION_NOT_GRANTED = "permission is not granted to the role";

  /** A key's state at one revision. version 0 marks a tombstone (the key was deleted at mod_revision). */
  public record KeyValue(byte[] key, long createRevision, long modRevision, long version, long lease, byte[] value) {
    @Override
    public boolean equals(Object o) {
      return o instanceof KeyValue k && Arrays.equals(key, k.key) && createRevision == k.createRevision
          && modRevision == k.modRevision && version == k.version && lease == k.lease && Arrays.equals(value, k.value);
    }

    @Override
    public int hashCode() {
      return Arrays.hashCode(key) * 31 + Long.hashCode(modRevision);
    }

    @Override
    public String toString() {
      return "KeyValue[" + new String(key, java.nio.charset.StandardCharsets.UTF_8) + " c=" + createRevision
          + " m=" + modRevision + " v=" + version + " l=" + lease + "]";
    }
  }

  /** One change seen by a watcher. A DELETE's kv carries only the key and the tombstone's mod_revision. */
  public record Event(Type type, KeyValue kv, KeyValue prevKv) {
    public enum Type { PUT, DELETE }
  }

  public enum SortOrder { NONE, ASCEND, DESCEND }

  public enum SortTarget { KEY, VERSION, CREATE, MOD, VALUE }

  /** An operation inside a Txn. */
  public sealed interface Op permits RangeRequest, PutRequest, DeleteRequest, TxnRequest {}

  /** A response inside a Txn response, in the order of the executed ops. */
  public sealed interface OpResponse permits RangeResponse, PutResponse, DeleteResponse, TxnResponse {}

  /**
   * Keys in [key, rangeEnd): rangeEnd empty selects {@code key} alone; rangeEnd {@code "\0"} every key
   * ≥ key; key {@code "\0"} with rangeEnd {@code "\0"} every key. revision ≤ 0 reads the current
   * revision. limit 0 is no limit. The min/max revision filters are ignored when 0.
   */
  public record RangeRequest(byte[] key, byte[] rangeEnd, long limit, long revision, SortOrder sortOrder,
                             SortTarget sortTarget, boolean keysOnly, boolean countOnly, long minModRevision,
                             long maxModRevision, long minCreateRevision, long maxCreateRevision) implements Op {
    public static RangeRequest of(byte[] key, byte[] rangeEnd) {
      return new RangeRequest(key, rangeEnd, 0, 0, SortOrder.NONE, SortTarget.KEY, false, false, 0, 0, 0, 0);
    }
  }

  /** kvs (empty for count_only), more (entries beyond limit), count (all keys in range, ignoring limit and filters). */
  public record RangeResponse(long revision, List<KeyValue> kvs, boolean more, long count) implements OpResponse {}

  public record PutRequest(byte[] key, byte[] value, long lease, boolean prevKv, boolean ignoreValue,
                           boolean ignoreLease) implements Op {}

  /** prevKv is null unless asked for and the key existed. */
  public record PutResponse(long revision, KeyValue prevKv) implements OpResponse {}

  public record DeleteRequest(byte[] key, byte[] rangeEnd, boolean prevKv) implements Op {}

  public record DeleteResponse(long revision, long deleted, List<KeyValue> prevKvs) implements OpResponse {}

  /** A Txn guard: compares {@code target} of every key in [key, rangeEnd) with the operand. */
  public record Compare(byte[] key, byte[] rangeEnd, Target target, Result result, long number, byte[] value) {
    public enum Target { VERSION, CREATE, MOD, VALUE, LEASE }

    public enum Result { EQUAL, GREATER, LESS, NOT_EQUAL }
  }

  public record TxnRequest(List<Compare> compare, List<Op> success, List<Op> failure) implements Op {}

  public record TxnResponse(long revision, boolean succeeded, List<OpResponse> responses) implements OpResponse {}

  public record CompactResponse(long revision) {}

  public record LeaseGrant(long id, long ttl, long revision) {}

  /** ttl −1 when the lease does not exist; keys only when asked for. */
  public record LeaseTimeToLive(long id, long ttl, long grantedTtl, List<byte[]> keys, long revision) {}

  /** HashKV's answer: the hash (an unsigned 32-bit value), the compacted and the current revision. */
  public record Hash(long hash, long compacted, long revision) {}

  /**
   * Where {@link KvStore#snapshot} puts the store's image, in this order: {@code begin} once, every
   * kept history row in (revision, seq) order, every lease by id. A retried read calls {@code begin}
   * again: what came before it is void.
   */
  public interface SnapshotSink {
    void begin(long revision, long compacted);

    /** One kept row: {@code seq} orders it within its revision; version 0 is a tombstone. */
    void row(int seq, KeyValue kv);

    /** A lease, its granted TTL and the seconds it has left (≥ 0). */
    void lease(long id, long ttl, long remaining);
  }

  /** The store's state: current revision and compacted revision. */
  public record Status(long revision, long compacted, long dbSizeBytes, long keys) {}
}
