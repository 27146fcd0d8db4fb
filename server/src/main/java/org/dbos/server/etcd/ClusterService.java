package org.dbos.server.etcd;

import static org.dbos.server.etcd.KvService.answer;

import io.grpc.stub.StreamObserver;
import java.util.UUID;
import org.dbos.kernel.Right;
import org.dbos.server.etcd.api.*;

/** MemberList: the live DBOS nodes sharing the database are the cluster's members. */
final class ClusterService extends ClusterGrpc.ClusterImplBase {
  private static final String ALIVE = "SELECT id, host, pid FROM nodes WHERE status = 'alive' ORDER BY started_at";
  private final EtcdServer etcd;

  ClusterService(EtcdServer etcd) {
    this.etcd = etcd;
  }

  @Override
  public void memberList(MemberListRequest req, StreamObserver<MemberListResponse> out) {
    answer(out, () -> {
      var s = etcd.session();
      long rev = etcd.store().revision(s);
      var b = MemberListResponse.newBuilder().setHeader(etcd.header(rev));
      etcd.kernel().call(etcd.kernel().system(), "etcd.members", Right.READ, "node:", tx -> tx.query(ALIVE, rs -> {
        long id = EtcdServer.memberId(rs.getObject(1, UUID.class));
        var m = Member.newBuilder().setID(id).setName(rs.getString(2) + "-" + rs.getLong(3));
        if (id == etcd.memberId()) {
          m.addClientURLs("http://" + etcd.address());
        }
        b.addMembers(m);
        return null;
      }));
      return b.build();
    });
  }
}
