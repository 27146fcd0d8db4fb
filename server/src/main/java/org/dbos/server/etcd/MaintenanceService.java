package org.dbos.server.etcd;

import static org.dbos.server.etcd.KvService.answer;

import io.grpc.stub.StreamObserver;
import org.dbos.server.etcd.api.*;

/**
 * Status (version, dbSize, this member as leader), Hash/HashKV, and the maintenance calls a database
 * makes moot. Snapshot stays UNIMPLEMENTED: etcd's snapshot is a bbolt file; back up the database.
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
}
