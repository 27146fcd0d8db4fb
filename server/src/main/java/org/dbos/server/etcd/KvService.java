package org.dbos.server.etcd;

import io.grpc.stub.StreamObserver;
import java.util.function.Supplier;
import org.dbos.server.etcd.api.*;

/** etcd's KV service: each RPC validates, makes one kernel call and answers with etcd's header. */
final class KvService extends KVGrpc.KVImplBase {
  private final EtcdServer etcd;

  KvService(EtcdServer etcd) {
    this.etcd = etcd;
  }

  static <T> void answer(StreamObserver<T> out, Supplier<T> call) {
    T response;
    try {
      response = call.get();
    } catch (RuntimeException e) {
      out.onError(Errors.translate(e));
      return;
    }
    out.onNext(response);
    out.onCompleted();
  }

  static void checkSize(com.google.protobuf.MessageLite m) {
    if (m.getSerializedSize() > EtcdServer.MAX_REQUEST_BYTES) {
      throw Errors.REQUEST_TOO_LARGE;
    }
  }

  @Override
  public void range(RangeRequest req, StreamObserver<RangeResponse> out) {
    answer(out, () -> {
      var r = etcd.store().range(etcd.session(), Protos.range(req));
      return Protos.range(r, req.getKeysOnly(), etcd.header(r.revision()));
    });
  }

  @Override
  public void put(PutRequest req, StreamObserver<PutResponse> out) {
    answer(out, () -> {
      checkSize(req);
      var r = etcd.store().put(etcd.session(), Protos.put(req));
      return Protos.put(r, etcd.header(r.revision()));
    });
  }

  @Override
  public void deleteRange(DeleteRangeRequest req, StreamObserver<DeleteRangeResponse> out) {
    answer(out, () -> {
      var r = etcd.store().delete(etcd.session(), Protos.delete(req));
      return Protos.delete(r, etcd.header(r.revision()));
    });
  }

  @Override
  public void txn(TxnRequest req, StreamObserver<TxnResponse> out) {
    answer(out, () -> {
      checkSize(req);
      var r = etcd.store().txn(etcd.session(), Protos.txn(req));
      return Protos.txn(req, r, etcd.header(r.revision()));
    });
  }

  @Override
  public void compact(CompactionRequest req, StreamObserver<CompactionResponse> out) {
    answer(out, () -> {
      var r = etcd.store().compact(etcd.session(), req.getRevision());
      return CompactionResponse.newBuilder().setHeader(etcd.header(r.revision())).build();
    });
  }
}
