package org.dbos.server.etcd;

import static org.dbos.server.etcd.KvService.answer;

import io.grpc.stub.StreamObserver;
import java.util.UUID;
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
      // any caller may list the members, as in etcd: a session check and an audit row in its name, no right
      etcd.kernel().callChecked(s, "etcd.members", "node:", true, tx -> tx.query(ALIVE, rs -> {
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
