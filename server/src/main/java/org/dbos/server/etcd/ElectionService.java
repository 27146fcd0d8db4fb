package org.dbos.server.etcd;

import static org.dbos.server.etcd.KvService.answer;
import static org.dbos.server.etcd.LockService.answerWaiting;

import com.google.protobuf.ByteString;
import io.grpc.stub.StreamObserver;
import org.dbos.kernel.SyscallException;
import org.dbos.kernel.kv.Elections;
import org.dbos.server.etcd.api.*;

/** etcd's v3election service: Campaign, Proclaim, Leader, Observe and Resign over {@link Elections}. */
final class ElectionService extends ElectionGrpc.ElectionImplBase {
  private final EtcdServer etcd;
  private final Elections elections;

  ElectionService(EtcdServer etcd, Elections elections) {
    this.etcd = etcd;
    this.elections = elections;
  }

  @Override
  public void campaign(CampaignRequest req, StreamObserver<CampaignResponse> out) {
    answerWaiting(etcd, out, (s, cancelled) -> {
      var l = elections.campaign(s, req.getName().toByteArray(), req.getLease(), req.getValue().toByteArray(), cancelled);
      return CampaignResponse.newBuilder().setHeader(etcd.header(l.revision())).setLeader(LeaderKey.newBuilder()
          .setName(req.getName()).setKey(ByteString.copyFrom(l.key())).setRev(l.revision()).setLease(l.lease())).build();
    });
  }

  @Override
  public void proclaim(ProclaimRequest req, StreamObserver<ProclaimResponse> out) {
    answer(out, () -> {
      if (!req.hasLeader()) {
        throw missingLeader();
      }
      long rev = elections.proclaim(etcd.session(), leader(req.getLeader()), req.getValue().toByteArray());
      return ProclaimResponse.newBuilder().setHeader(etcd.header(rev)).build();
    });
  }

  @Override
  public void leader(LeaderRequest req, StreamObserver<LeaderResponse> out) {
    answer(out, () -> {
      var r = elections.leader(etcd.session(), req.getName().toByteArray());
      return LeaderResponse.newBuilder().setHeader(etcd.header(r.revision())).setKv(Protos.kv(r.kvs().getFirst(), false)).build();
    });
  }

  /** Streams the leader now and at every change, until the client cancels. */
  @Override
  public void observe(LeaderRequest req, StreamObserver<LeaderResponse> out) {
    answerWaiting(etcd, out, (s, cancelled) -> {
      elections.observe(s, req.getName().toByteArray(), kv -> out.onNext(
          LeaderResponse.newBuilder().setHeader(etcd.header(kv.modRevision())).setKv(Protos.kv(kv, false)).build()), cancelled);
      throw new IllegalStateException("observe ended without a cancel");
    });
  }

  @Override
  public void resign(ResignRequest req, StreamObserver<ResignResponse> out) {
    answer(out, () -> {
      if (!req.hasLeader()) {
        throw missingLeader();
      }
      long rev = elections.resign(etcd.session(), leader(req.getLeader()));
      return ResignResponse.newBuilder().setHeader(etcd.header(rev)).build();
    });
  }

  private static SyscallException missingLeader() {
    return SyscallException.invalid("\"leader\" field must be provided");
  }

  private static Elections.Leader leader(LeaderKey k) {
    return new Elections.Leader(k.getName().toByteArray(), k.getKey().toByteArray(), k.getRev(), k.getLease());
  }
}
