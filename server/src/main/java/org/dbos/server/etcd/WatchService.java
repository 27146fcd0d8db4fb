package org.dbos.server.etcd;

import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import org.dbos.kernel.Session;
import org.dbos.kernel.kv.Kv;
import org.dbos.kernel.kv.Watches;
import org.dbos.server.etcd.api.*;

/**
 * etcd's Watch service: one bidirectional stream carries many watches. Events come from the node's
 * watch hub; a stream whose client reads slowly stops being ready, its watchers fall back to catching
 * up from history, and the hub is woken when the stream drains — memory stays bounded.
 */
final class WatchService extends WatchGrpc.WatchImplBase {
  /** Responses are split at revision boundaries above this size (etcd never splits a revision unless asked). */
  private static final int MAX_RESPONSE_BYTES = 1024 * 1024;
  /** etcd's (mvcc) reasons for refusing a watch create. */
  static final String EMPTY_RANGE = "mvcc: watcher range is empty";
  static final String DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream";
  private final EtcdServer etcd;

  WatchService(EtcdServer etcd) {
    this.etcd = etcd;
  }

  @Override
  public StreamObserver<WatchRequest> watch(StreamObserver<WatchResponse> out) {
    return new Stream((ServerCallStreamObserver<WatchResponse>) out);
  }

  private final class Stream implements StreamObserver<WatchRequest> {
    private final ServerCallStreamObserver<WatchResponse> out;
    private final ConcurrentHashMap<Long, Watches.Watcher> watchers = new ConcurrentHashMap<>();
    /** The next auto id to try; only the thread delivering this stream's requests uses it. */
    private long nextId;
    private final Session session;
    private volatile boolean closed;

    Stream(ServerCallStreamObserver<WatchResponse> out) {
      this.out = out;
      this.session = etcd.session();
      out.setOnReadyHandler(() -> etcd.store().watches().wake());
      out.setOnCancelHandler(this::closeAll);
    }

    private void send(WatchResponse r) {
      synchronized (out) {
        if (!closed) {
          out.onNext(r);
        }
      }
    }

    @Override
    public void onNext(WatchRequest req) {
      switch (req.getRequestUnionCase()) {
        case CREATE_REQUEST -> create(req.getCreateRequest());
        case CANCEL_REQUEST -> {
          var w = watchers.remove(req.getCancelRequest().getWatchId());
          if (w == null) {
            return; // as etcd: a cancel of an id not in use is not answered
          }
          etcd.store().watches().cancel(w);
          send(WatchResponse.newBuilder().setHeader(etcd.header(currentRevision()))
              .setWatchId(req.getCancelRequest().getWatchId()).setCanceled(true).build());
        }
        case PROGRESS_REQUEST -> etcd.store().watches().requestProgress(watchers.values(), rev ->
            send(WatchResponse.newBuilder().setHeader(etcd.header(rev)).setWatchId(-1).build()));
        case REQUESTUNION_NOT_SET -> { }
      }
    }

    private long currentRevision() {
      try {
        return etcd.store().revision(session);
      } catch (RuntimeException e) {
        return 0;
      }
    }

    private void create(WatchCreateRequest c) {
      // as etcd's v3rpc and mvcc watch stream: an empty key is the smallest key, "\0" as range end means
      // every key from key on; an empty range and an id in use are refused with watch id -1
      byte[] key = c.getKey().isEmpty() ? new byte[] {0} : c.getKey().toByteArray();
      byte[] end = c.getRangeEnd().toByteArray();
      boolean fromKey = end.length == 1 && end[0] == 0;
      String refused = !fromKey && end.length > 0 && Arrays.compareUnsigned(key, end) >= 0 ? EMPTY_RANGE
          : c.getWatchId() != 0 && watchers.containsKey(c.getWatchId()) ? DUPLICATE_ID : null;
      if (refused != null) {
        send(WatchResponse.newBuilder().setHeader(etcd.header(currentRevision())).setWatchId(-1).setCreated(true)
            .setCanceled(true).setCancelReason(refused).build());
        return;
      }
      long id = c.getWatchId();
      if (id == 0) { // auto ids skip the ids the client chose
        while (watchers.containsKey(nextId)) {
          nextId++;
        }
        id = nextId++;
      }
      boolean noPut = c.getFiltersList().contains(WatchCreateRequest.FilterType.NOPUT);
      boolean noDelete = c.getFiltersList().contains(WatchCreateRequest.FilterType.NODELETE);
      var sink = new Sink(id);
      Watches.Watcher w;
      try {
        w = etcd.store().watches().watch(session, key, end, c.getStartRevision(), c.getPrevKv(), noPut, noDelete,
            c.getProgressNotify(), sink);
      } catch (RuntimeException e) {
        // as etcd 3.4's v3rpc: a create the caller may not make is answered with the client's own id
        // (0 when it let the server choose) and then ends the stream; any other failure refuses the
        // watch with id -1 and keeps the stream
        var status = Errors.translate(e).getStatus();
        boolean denied = status.getCode() == io.grpc.Status.Code.PERMISSION_DENIED;
        send(WatchResponse.newBuilder().setHeader(etcd.header(currentRevision())).setWatchId(denied ? c.getWatchId() : -1)
            .setCreated(true).setCanceled(true).setCancelReason(status.getDescription()).build());
        if (denied) {
          onCompleted();
        }
        return;
      }
      watchers.put(id, w);
      if (closed) { // the stream closed while the watch was made: closeAll may have missed it
        watchers.remove(id);
        etcd.store().watches().cancel(w);
        return;
      }
      send(WatchResponse.newBuilder().setHeader(etcd.header(w.createdRevision())).setWatchId(id).setCreated(true).build());
      sink.started = true;
      etcd.store().watches().wake();
    }

    @Override
    public void onError(Throwable t) {
      closeAll();
    }

    @Override
    public void onCompleted() {
      closeAll();
      synchronized (out) {
        out.onCompleted();
      }
    }

    private void closeAll() {
      closed = true;
      watchers.values().forEach(etcd.store().watches()::cancel);
      watchers.clear();
    }

    /** Hands one watcher's events to the stream, only once "created" went out and while it is ready. */
    private final class Sink implements Watches.Sink {
      final long id;
      volatile boolean started;

      Sink(long id) {
        this.id = id;
      }

      @Override
      public boolean ready() {
        return started && !closed && out.isReady();
      }

      @Override
      public void events(List<Kv.Event> events, long revision) {
        var batch = new ArrayList<Event>();
        int size = 0;
        for (int i = 0; i < events.size(); i++) {
          Event e = Protos.event(events.get(i));
          batch.add(e);
          size += e.getSerializedSize();
          boolean revisionEnds = i + 1 == events.size()
              || events.get(i + 1).kv().modRevision() != events.get(i).kv().modRevision();
          if (revisionEnds && size > MAX_RESPONSE_BYTES && i + 1 < events.size()) {
            send(WatchResponse.newBuilder().setHeader(etcd.header(events.get(i).kv().modRevision())).setWatchId(id)
                .addAllEvents(batch).build());
            batch.clear();
            size = 0;
          }
        }
        send(WatchResponse.newBuilder().setHeader(etcd.header(revision)).setWatchId(id).addAllEvents(batch).build());
      }

      @Override
      public void compacted(long compactRevision) {
        // the id stays in use until the client cancels it, as in etcd
        // as etcd: the header carries no revision, the compacted revision is in compact_revision
        send(WatchResponse.newBuilder().setHeader(etcd.header(0)).setWatchId(id).setCanceled(true)
            .setCompactRevision(compactRevision).build());
      }

      /** As etcd when a watcher's permission goes: canceled, with the reason. */
      @Override
      public void denied() {
        send(WatchResponse.newBuilder().setHeader(etcd.header(0)).setWatchId(id).setCanceled(true)
            .setCancelReason("etcdserver: permission denied").build());
      }

      @Override
      public void progress(long revision) {
        send(WatchResponse.newBuilder().setHeader(etcd.header(revision)).setWatchId(id).build());
      }
    }
  }
}
