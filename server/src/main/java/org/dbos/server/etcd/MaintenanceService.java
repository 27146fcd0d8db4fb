package org.dbos.server.etcd;

import static org.dbos.server.etcd.KvService.answer;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.concurrent.Semaphore;
import org.dbos.kernel.Session;
import org.dbos.server.etcd.api.*;

/**
 * Status (version, dbSize, this member as leader), Hash/HashKV, Snapshot (the store as etcd's bbolt
 * file: {@link EtcdSnapshot}), and the maintenance calls a database makes moot.
 */
final class MaintenanceService extends MaintenanceGrpc.MaintenanceImplBase {
  private final EtcdServer etcd;

  MaintenanceService(EtcdServer etcd) {
    this.etcd = etcd;
  }

  @Override
  public void status(StatusRequest req, StreamObserver<StatusResponse> out) {
    answer(out, () -> {
      var s = etcd.store().status(etcd.session());
      return StatusResponse.newBuilder().setHeader(etcd.header(s.revision())).setVersion(EtcdServer.VERSION)
          .setDbSize(s.dbSizeBytes()).setDbSizeInUse(s.dbSizeBytes()).setLeader(etcd.memberId())
          .setRaftIndex(s.revision()).setRaftAppliedIndex(s.revision()).setRaftTerm(1).build();
    });
  }

  @Override
  public void hashKV(HashKVRequest req, StreamObserver<HashKVResponse> out) {
    answer(out, () -> {
      var h = etcd.store().hashKv(etcd.session(), req.getRevision());
      return HashKVResponse.newBuilder().setHeader(etcd.header(h.revision())).setHash((int) h.hash())
          .setCompactRevision(h.compacted()).build();
    });
  }

  /** etcd's hash of its whole backend; here that of every kept key revision, as HashKV at the current revision. */
  @Override
  public void hash(HashRequest req, StreamObserver<HashResponse> out) {
    answer(out, () -> {
      var h = etcd.store().hashKv(etcd.session(), 0);
      return HashResponse.newBuilder().setHeader(etcd.header(h.revision())).setHash((int) h.hash()).build();
    });
  }

  /** No alarms: space is the database's concern. */
  @Override
  public void alarm(AlarmRequest req, StreamObserver<AlarmResponse> out) {
    answer(out, () -> AlarmResponse.newBuilder().setHeader(etcd.header(etcd.store().revision(etcd.session()))).build());
  }

  /** PostgreSQL's autovacuum reclaims space; defragmenting is a no-op that succeeds. */
  @Override
  public void defragment(DefragmentRequest req, StreamObserver<DefragmentResponse> out) {
    answer(out, () -> DefragmentResponse.newBuilder().setHeader(etcd.header(etcd.store().revision(etcd.session()))).build());
  }

  /** etcd's chunk size; the last message carries the SHA-256 of everything before it, as etcd's does. */
  private static final int CHUNK = 32 << 10;

  /**
   * Writes the image to a temporary file (the meta pages come last), then streams it, pausing while the
   * client's window is full so a slow reader costs no memory. Runs off gRPC's thread: the readiness
   * callbacks that wake it run there.
   */
  @Override
  public void snapshot(SnapshotRequest req, StreamObserver<SnapshotResponse> out) {
    Session s;
    try {
      s = etcd.session();
    } catch (RuntimeException e) {
      out.onError(Errors.translate(e));
      return;
    }
    var call = (ServerCallStreamObserver<SnapshotResponse>) out;
    var ready = new Semaphore(0);
    call.setOnReadyHandler(ready::release);
    call.setOnCancelHandler(ready::release);
    Thread.ofVirtual().name("etcd-snapshot").start(() -> {
      Path tmp = null;
      try {
        tmp = Files.createTempFile("dbos-snapshot-", ".db");
        try (FileChannel file = FileChannel.open(tmp, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
          var image = new EtcdSnapshot(file);
          etcd.store().snapshot(s, image);
          long size = image.finish();
          var header = etcd.header(image.revision());
          var sha = MessageDigest.getInstance("SHA-256");
          ByteBuffer buf = ByteBuffer.allocate(CHUNK);
          for (long sent = 0; sent < size; ) {
            buf.clear().limit((int) Math.min(CHUNK, size - sent));
            while (buf.hasRemaining()) {
              file.read(buf, sent + buf.position());
            }
            buf.flip();
            sha.update(buf.duplicate());
            sent += buf.remaining();
            if (!await(call, ready)) {
              return;
            }
            out.onNext(SnapshotResponse.newBuilder().setHeader(header).setRemainingBytes(size - sent)
                .setBlob(ByteString.copyFrom(buf)).build());
          }
          if (await(call, ready)) {
            out.onNext(SnapshotResponse.newBuilder().setHeader(header).setBlob(ByteString.copyFrom(sha.digest())).build());
            out.onCompleted();
          }
        }
      } catch (RuntimeException e) {
        out.onError(Errors.translate(e));
      } catch (IOException | java.security.NoSuchAlgorithmException e) {
        out.onError(Status.INTERNAL.withDescription("snapshot: " + e.getMessage()).asRuntimeException());
      } finally {
        if (tmp != null) {
          try {
            Files.deleteIfExists(tmp);
          } catch (IOException ignored) {
            // a temporary file
          }
        }
      }
    });
  }

  /** Waits until the client can take a message; false if it went away. */
  private static boolean await(ServerCallStreamObserver<?> call, Semaphore ready) {
    while (!call.isReady()) {
      if (call.isCancelled()) {
        return false;
      }
      ready.acquireUninterruptibly();
    }
    return !call.isCancelled();
  }
}
