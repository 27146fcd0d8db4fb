package org.dbos.server.etcd;

import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
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
    private final AtomicLong nextId = new AtomicLong();
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
          if (w != null) {
            etcd.store().watches().cancel(w);
          }
          long rev;
          try {
            rev = etcd.store().revision(session);
          } catch (RuntimeException e) {
            rev = 0;
          }
          send(WatchResponse.newBuilder().setHeader(etcd.header(rev)).setWatchId(req.getCancelRequest().getWatchId())
              .setCanceled(true).build());
        }
        case PROGRESS_REQUEST -> etcd.store().watches().requestProgress(watchers.values(), rev ->
            send(WatchResponse.newBuilder().setHeader(etcd.header(rev)).setWatchId(-1).build()));
        case REQUESTUNION_NOT_SET -> { }
      }
    }

    private void create(WatchCreateRequest c) {
      long id = c.getWatchId() != 0 ? c.getWatchId() : nextId.getAndIncrement();
      boolean noPut = c.getFiltersList().contains(WatchCreateRequest.FilterType.NOPUT);
      boolean noDelete = c.getFiltersList().contains(WatchCreateRequest.FilterType.NODELETE);
      var sink = new Sink(id);
      Watches.Watcher w;
      try {
        w = etcd.store().watches().watch(session, c.getKey().toByteArray(), c.getRangeEnd().toByteArray(),
            c.getStartRevision(), c.getPrevKv(), noPut, noDelete, c.getProgressNotify(), sink);
      } catch (RuntimeException e) {
        send(WatchResponse.newBuilder().setHeader(etcd.header(0)).setWatchId(id).setCreated(true).setCanceled(true)
            .setCancelReason(Errors.translate(e).getStatus().getDescription()).build());
        return;
      }
      watchers.put(id, w);
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
        watchers.remove(id);
        // as etcd: the header carries no revision, the compacted revision is in compact_revision
        send(WatchResponse.newBuilder().setHeader(etcd.header(0)).setWatchId(id).setCanceled(true)
            .setCompactRevision(compactRevision).build());
      }

      /** As etcd when a watcher's permission goes: canceled, with the reason. */
      @Override
      public void denied() {
        watchers.remove(id);
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
