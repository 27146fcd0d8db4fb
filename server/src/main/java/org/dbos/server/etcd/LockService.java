package org.dbos.server.etcd;

import com.google.protobuf.ByteString;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import org.dbos.kernel.Session;
import org.dbos.kernel.kv.Elections;
import org.dbos.server.etcd.api.*;

/** etcd's v3lock service: Lock waits for the named lock on the caller's lease, Unlock deletes its key. */
final class LockService extends LockGrpc.LockImplBase {
  private final EtcdServer etcd;
  private final Elections elections;

  LockService(EtcdServer etcd, Elections elections) {
    this.etcd = etcd;
    this.elections = elections;
  }

  @Override
  public void lock(LockRequest req, StreamObserver<LockResponse> out) {
    answerWaiting(etcd, out, (s, cancelled) -> {
      var held = elections.campaign(s, req.getName().toByteArray(), req.getLease(), new byte[0], cancelled);
      return LockResponse.newBuilder().setHeader(etcd.header(held.revision())).setKey(ByteString.copyFrom(held.key())).build();
    });
  }

  @Override
  public void unlock(UnlockRequest req, StreamObserver<UnlockResponse> out) {
    KvService.answer(out, () ->
        UnlockResponse.newBuilder().setHeader(etcd.header(elections.unlock(etcd.session(), req.getKey().toByteArray()))).build());
  }

  /** A call that may wait long: it ends its wait when {@code cancelled} completes. */
  interface Waiting<T> {
    T run(Session s, CompletableFuture<Void> cancelled);
  }

  static <T> void answerWaiting(EtcdServer etcd, StreamObserver<T> out, Waiting<T> call) {
    Session s;
    try {
      s = etcd.session(); // from the gRPC context, which the virtual thread does not inherit
    } catch (RuntimeException e) {
      out.onError(Errors.translate(e));
      return;
    }
    var cancelled = new CompletableFuture<Void>();
    ((ServerCallStreamObserver<T>) out).setOnCancelHandler(() -> cancelled.complete(null));
    Thread.ofVirtual().name("etcd-wait").start(() -> {
      try {
        T response = call.run(s, cancelled);
        out.onNext(response);
        out.onCompleted();
      } catch (CancellationException e) {
        // the client cancelled: nobody to answer
      } catch (RuntimeException e) {
        out.onError(Errors.translate(e));
      }
    });
  }
}
