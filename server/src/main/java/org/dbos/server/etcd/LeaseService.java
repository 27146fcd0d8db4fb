package org.dbos.server.etcd;

import static org.dbos.server.etcd.KvService.answer;

import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import org.dbos.kernel.SyscallException;
import org.dbos.server.etcd.api.*;

/** etcd's Lease service over the store's durable, database-clocked leases. */
final class LeaseService extends LeaseGrpc.LeaseImplBase {
  private final EtcdServer etcd;

  LeaseService(EtcdServer etcd) {
    this.etcd = etcd;
  }

  @Override
  public void leaseGrant(LeaseGrantRequest req, StreamObserver<LeaseGrantResponse> out) {
    answer(out, () -> {
      var g = etcd.store().grant(etcd.session(), req.getID(), req.getTTL());
      return LeaseGrantResponse.newBuilder().setHeader(etcd.header(g.revision())).setID(g.id()).setTTL(g.ttl()).build();
    });
  }

  @Override
  public void leaseRevoke(LeaseRevokeRequest req, StreamObserver<LeaseRevokeResponse> out) {
    answer(out, () -> {
      long rev = etcd.store().revoke(etcd.session(), req.getID());
      return LeaseRevokeResponse.newBuilder().setHeader(etcd.header(rev)).build();
    });
  }

  @Override
  public void leaseTimeToLive(LeaseTimeToLiveRequest req, StreamObserver<LeaseTimeToLiveResponse> out) {
    answer(out, () -> {
      var t = etcd.store().timeToLive(etcd.session(), req.getID(), req.getKeys());
      var b = LeaseTimeToLiveResponse.newBuilder().setHeader(etcd.header(t.revision())).setID(t.id()).setTTL(t.ttl())
          .setGrantedTTL(t.grantedTtl());
      t.keys().forEach(k -> b.addKeys(com.google.protobuf.ByteString.copyFrom(k)));
      return b.build();
    });
  }

  @Override
  public void leaseLeases(LeaseLeasesRequest req, StreamObserver<LeaseLeasesResponse> out) {
    answer(out, () -> {
      var s = etcd.session();
      var ids = etcd.store().leases(s);
      var b = LeaseLeasesResponse.newBuilder().setHeader(etcd.header(etcd.store().revision(s)));
      ids.forEach(id -> b.addLeases(LeaseStatus.newBuilder().setID(id)));
      return b.build();
    });
  }

  /** Each request renews one lease; an unknown lease answers TTL 0, as etcd does. */
  @Override
  public StreamObserver<LeaseKeepAliveRequest> leaseKeepAlive(StreamObserver<LeaseKeepAliveResponse> out) {
    var stream = (ServerCallStreamObserver<LeaseKeepAliveResponse>) out;
    return new StreamObserver<>() {
      @Override
      public void onNext(LeaseKeepAliveRequest req) {
        try {
          var s = etcd.session();
          long ttl = etcd.store().keepAlive(s, req.getID());
          long rev = etcd.store().revision(s);
          synchronized (stream) {
            stream.onNext(LeaseKeepAliveResponse.newBuilder().setHeader(etcd.header(rev)).setID(req.getID())
                .setTTL(ttl).build());
          }
        } catch (SyscallException | io.grpc.StatusRuntimeException e) {
          synchronized (stream) {
            stream.onError(Errors.translate(e));
          }
        }
      }

      @Override
      public void onError(Throwable t) {}

      @Override
      public void onCompleted() {
        synchronized (stream) {
          stream.onCompleted();
        }
      }
    };
  }
}
