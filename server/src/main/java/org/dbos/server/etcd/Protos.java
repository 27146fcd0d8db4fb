package org.dbos.server.etcd;

import com.google.protobuf.ByteString;
import java.util.ArrayList;
import java.util.List;
import org.dbos.kernel.kv.Kv;
import org.dbos.server.etcd.api.*;

/** Translation between etcd's wire messages and the kernel's {@link Kv} values. */
final class Protos {
  private Protos() {}

  static byte[] bytes(ByteString b) {
    return b.toByteArray();
  }

  static KeyValue kv(Kv.KeyValue k, boolean keysOnly) {
    var b = KeyValue.newBuilder().setKey(ByteString.copyFrom(k.key())).setCreateRevision(k.createRevision())
        .setModRevision(k.modRevision()).setVersion(k.version()).setLease(k.lease());
    if (!keysOnly && k.value() != null) {
      b.setValue(ByteString.copyFrom(k.value()));
    }
    return b.build();
  }

  static Event event(Kv.Event e) {
    var b = Event.newBuilder().setType(e.type() == Kv.Event.Type.PUT ? Event.EventType.PUT : Event.EventType.DELETE)
        .setKv(kv(e.kv(), false));
    if (e.prevKv() != null) {
      b.setPrevKv(kv(e.prevKv(), false));
    }
    return b.build();
  }

  static Kv.RangeRequest range(RangeRequest r) {
    return new Kv.RangeRequest(bytes(r.getKey()), bytes(r.getRangeEnd()), r.getLimit(), r.getRevision(),
        Kv.SortOrder.values()[Math.min(r.getSortOrderValue(), 2)], Kv.SortTarget.values()[Math.min(r.getSortTargetValue(), 4)],
        r.getKeysOnly(), r.getCountOnly(), r.getMinModRevision(), r.getMaxModRevision(), r.getMinCreateRevision(),
        r.getMaxCreateRevision());
  }

  static RangeResponse range(Kv.RangeResponse r, boolean keysOnly, ResponseHeader h) {
    var b = RangeResponse.newBuilder().setHeader(h).setMore(r.more()).setCount(r.count());
    for (Kv.KeyValue k : r.kvs()) {
      b.addKvs(kv(k, keysOnly));
    }
    return b.build();
  }

  static Kv.PutRequest put(PutRequest r) {
    return new Kv.PutRequest(bytes(r.getKey()), bytes(r.getValue()), r.getLease(), r.getPrevKv(), r.getIgnoreValue(),
        r.getIgnoreLease());
  }

  static PutResponse put(Kv.PutResponse r, ResponseHeader h) {
    var b = PutResponse.newBuilder().setHeader(h);
    if (r.prevKv() != null) {
      b.setPrevKv(kv(r.prevKv(), false));
    }
    return b.build();
  }

  static Kv.DeleteRequest delete(DeleteRangeRequest r) {
    return new Kv.DeleteRequest(bytes(r.getKey()), bytes(r.getRangeEnd()), r.getPrevKv());
  }

  static DeleteRangeResponse delete(Kv.DeleteResponse r, ResponseHeader h) {
    var b = DeleteRangeResponse.newBuilder().setHeader(h).setDeleted(r.deleted());
    for (Kv.KeyValue k : r.prevKvs()) {
      b.addPrevKvs(kv(k, false));
    }
    return b.build();
  }

  static Kv.TxnRequest txn(TxnRequest t) {
    var cmps = new ArrayList<Kv.Compare>();
    for (Compare c : t.getCompareList()) {
      Kv.Compare.Target target = switch (c.getTarget()) {
        case VERSION -> Kv.Compare.Target.VERSION;
        case CREATE -> Kv.Compare.Target.CREATE;
        case MOD -> Kv.Compare.Target.MOD;
        case VALUE -> Kv.Compare.Target.VALUE;
        case LEASE -> Kv.Compare.Target.LEASE;
        case UNRECOGNIZED -> throw new IllegalArgumentException("unknown compare target");
      };
      Kv.Compare.Result result = switch (c.getResult()) {
        case EQUAL -> Kv.Compare.Result.EQUAL;
        case GREATER -> Kv.Compare.Result.GREATER;
        case LESS -> Kv.Compare.Result.LESS;
        case NOT_EQUAL -> Kv.Compare.Result.NOT_EQUAL;
        case UNRECOGNIZED -> throw new IllegalArgumentException("unknown compare result");
      };
      long number = switch (target) {
        case VERSION -> c.getVersion();
        case CREATE -> c.getCreateRevision();
        case MOD -> c.getModRevision();
        case LEASE -> c.getLease();
        case VALUE -> 0;
      };
      cmps.add(new Kv.Compare(bytes(c.getKey()), bytes(c.getRangeEnd()), target, result, number, bytes(c.getValue())));
    }
    return new Kv.TxnRequest(cmps, ops(t.getSuccessList()), ops(t.getFailureList()));
  }

  private static List<Kv.Op> ops(List<RequestOp> ops) {
    var out = new ArrayList<Kv.Op>();
    for (RequestOp op : ops) {
      out.add(switch (op.getRequestCase()) {
        case REQUEST_RANGE -> range(op.getRequestRange());
        case REQUEST_PUT -> put(op.getRequestPut());
        case REQUEST_DELETE_RANGE -> delete(op.getRequestDeleteRange());
        case REQUEST_TXN -> txn(op.getRequestTxn());
        case REQUEST_NOT_SET -> throw new IllegalArgumentException("empty request op");
      });
    }
    return out;
  }

  /** The Txn's response; nested op responses carry only their revision in the header, nested Txns none, as etcd's. */
  static TxnResponse txn(TxnRequest req, Kv.TxnResponse r, ResponseHeader h) {
    var b = TxnResponse.newBuilder().setHeader(h).setSucceeded(r.succeeded());
    List<RequestOp> ops = r.succeeded() ? req.getSuccessList() : req.getFailureList();
    for (int i = 0; i < r.responses().size(); i++) {
      RequestOp op = ops.get(i);
      b.addResponses(switch (r.responses().get(i)) {
        case Kv.RangeResponse rr -> ResponseOp.newBuilder().setResponseRange(
            range(rr, op.getRequestRange().getKeysOnly(), nested(rr.revision())));
        case Kv.PutResponse pr -> ResponseOp.newBuilder().setResponsePut(put(pr, nested(pr.revision())));
        case Kv.DeleteResponse dr -> ResponseOp.newBuilder().setResponseDeleteRange(delete(dr, nested(dr.revision())));
        case Kv.TxnResponse tr -> ResponseOp.newBuilder().setResponseTxn(txn(op.getRequestTxn(), tr, ResponseHeader.getDefaultInstance()));
      });
    }
    return b.build();
  }

  private static ResponseHeader nested(long revision) {
    return ResponseHeader.newBuilder().setRevision(revision).build();
  }
}
