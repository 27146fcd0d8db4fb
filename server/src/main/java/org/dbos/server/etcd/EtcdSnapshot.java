package org.dbos.server.etcd;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import org.dbos.kernel.kv.Kv;
import org.dbos.server.etcd.api.KeyValue;

/**
 * The store's image laid out as etcd 3.4 keeps its backend, in a {@link BoltFile}: bucket {@code key}
 * maps each kept revision (8-byte main revision, {@code '_'}, 8-byte sub revision, big-endian; a
 * tombstone adds {@code 't'}) to the marshalled {@code mvccpb.KeyValue}; {@code lease} maps each lease
 * id to a {@code leasepb.Lease}; {@code meta} holds the compacted revision. The buckets etcd recreates
 * itself (members, auth, alarms) are left out: {@code snapshot restore} writes the new cluster's
 * members, and users and roles are DBOS principals, kept in the database, not in the snapshot.
 */
final class EtcdSnapshot implements Kv.SnapshotSink {
  private static final byte[] KEY = bytes("key");
  private static final byte[] LEASE = bytes("lease");
  private static final byte[] META = bytes("meta");

  private final FileChannel file;
  private BoltFile bolt;
  private BoltFile.Bucket bucket;
  private long revision;
  private long compacted;

  EtcdSnapshot(FileChannel file) {
    this.file = file;
  }

  /** The revision the image is at. */
  long revision() {
    return revision;
  }

  @Override
  public void begin(long revision, long compacted) {
    this.revision = revision;
    this.compacted = compacted;
    try {
      file.truncate(0); // a retried read starts over
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    bolt = new BoltFile(file);
    bucket = bolt.bucket(KEY);
  }

  @Override
  public void row(int seq, Kv.KeyValue kv) {
    boolean tombstone = kv.version() == 0;
    var key = ByteBuffer.allocate(tombstone ? 18 : 17).putLong(kv.modRevision()).put((byte) '_').putLong(seq);
    if (tombstone) {
      key.put((byte) 't');
    }
    var value = KeyValue.newBuilder().setKey(ByteString.copyFrom(kv.key()));
    if (!tombstone) {
      value.setCreateRevision(kv.createRevision()).setModRevision(kv.modRevision()).setVersion(kv.version())
          .setLease(kv.lease()).setValue(ByteString.copyFrom(kv.value()));
    }
    put(key.array(), value.build().toByteArray());
  }

  @Override
  public void lease(long id, long ttl, long remaining) {
    if (java.util.Arrays.equals(bucket.name(), KEY)) {
      next(LEASE);
    }
    // leasepb.Lease {int64 ID = 1; int64 TTL = 2; int64 RemainingTTL = 3;}
    var out = new ByteArrayOutputStream();
    var pb = CodedOutputStream.newInstance(out);
    try {
      pb.writeInt64(1, id);
      pb.writeInt64(2, ttl);
      if (remaining > 0) {
        pb.writeInt64(3, remaining);
      }
      pb.flush();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    put(ByteBuffer.allocate(8).putLong(id).array(), out.toByteArray());
  }

  /** Closes the last buckets and writes the meta pages; returns the file's size. */
  long finish() throws IOException {
    if (java.util.Arrays.equals(bucket.name(), KEY)) {
      next(LEASE);
    }
    next(META);
    if (compacted > 0) {
      // what etcd records when a compaction is scheduled and when it is done
      byte[] rev = ByteBuffer.allocate(17).putLong(compacted).put((byte) '_').putLong(0).array();
      bucket.put(bytes("finishedCompactRev"), rev);
      bucket.put(bytes("scheduledCompactRev"), rev);
    }
    bucket.finish();
    return bolt.finish();
  }

  private void next(byte[] name) {
    try {
      bucket.finish();
      bucket = bolt.bucket(name);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void put(byte[] key, byte[] value) {
    try {
      bucket.put(key, value);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }
}
