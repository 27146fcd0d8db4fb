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

  /**
   * Answers when {@code pending} completes — on the store's writer thread, right after the commit — so
   * no thread waits for a write.
   */
  static <R, T> void answerLater(StreamObserver<T> out, Supplier<java.util.concurrent.CompletableFuture<R>> call,
                                 java.util.function.Function<R, T> response) {
    java.util.concurrent.CompletableFuture<R> pending;
    try {
      pending = call.get();
    } catch (RuntimeException e) {
      out.onError(Errors.translate(e));
      return;
    }
    pending.whenComplete((r, e) -> {
      if (e != null) {
        Throwable t = e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e;
        out.onError(Errors.translate(t instanceof RuntimeException re ? re : new RuntimeException(t)));
        return;
      }
      try {
        out.onNext(response.apply(r));
        out.onCompleted();
      } catch (RuntimeException ex) {
        out.onError(Errors.translate(ex));
      }
    });
  }

  /** etcd refuses a write (a raft proposal) above --max-request-bytes; Range is no proposal, and unchecked. */
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
    answerLater(out, () -> {
      checkSize(req);
      return etcd.store().putAsync(etcd.session(), Protos.put(req));
    }, r -> Protos.put(r, etcd.header(r.revision())));
  }

  @Override
  public void deleteRange(DeleteRangeRequest req, StreamObserver<DeleteRangeResponse> out) {
    answerLater(out, () -> {
      checkSize(req);
      return etcd.store().deleteAsync(etcd.session(), Protos.delete(req));
    }, r -> Protos.delete(r, etcd.header(r.revision())));
  }

  @Override
  public void txn(TxnRequest req, StreamObserver<TxnResponse> out) {
    answerLater(out, () -> {
      checkSize(req);
      return etcd.store().txnAsync(etcd.session(), Protos.txn(req));
    }, r -> Protos.txn(req, r, etcd.header(r.revision())));
  }

  @Override
  public void compact(CompactionRequest req, StreamObserver<CompactionResponse> out) {
    answer(out, () -> {
      var r = etcd.store().compact(etcd.session(), req.getRevision());
      return CompactionResponse.newBuilder().setHeader(etcd.header(r.revision())).build();
    });
  }
}
