-- The etcd front end's built-in principal: anonymous gRPC callers act as it while etcd auth is
-- disabled (etcd's default). It may read, write and compact keys and manage leases, nothing else.
INSERT INTO principals (name, kind, uid, gid, is_admin)
  SELECT 'etcd', 'service', v, v, false FROM (SELECT nextval('principal_uid')::int AS v) s;
INSERT INTO grants (principal_id, right_name, object_prefix)
  SELECT p.id, r, o FROM principals p, unnest(ARRAY['READ', 'WRITE', 'ADMIN']) r, unnest(ARRAY['kv:', 'lease:']) o
  WHERE p.name = 'etcd';

-- Whether etcd clients must authenticate (AuthEnable/AuthDisable), shared by all nodes.
CREATE TABLE kv_auth (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  enabled boolean NOT NULL DEFAULT false
);
INSERT INTO kv_auth DEFAULT VALUES;
