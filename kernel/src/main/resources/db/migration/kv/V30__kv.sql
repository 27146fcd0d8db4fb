-- The etcd-style MVCC key-value store (org.dbos.kernel.kv). Keys and values are bytea, whose btree
-- order is byte order (memcmp), so prefix and range scans are index range scans as in etcd.

-- The store's clock: one row. Every write transaction (a batch of requests) locks it once, hands out
-- consecutive revisions in memory and writes the last one back, so revisions are gap-free and become
-- visible in order (the next writer waits for this row until the previous commit is visible).
CREATE TABLE kv_revision (
  id        boolean PRIMARY KEY DEFAULT true CHECK (id),
  revision  bigint  NOT NULL CHECK (revision >= 1),   -- the store's current revision (etcd starts at 1)
  compacted bigint  NOT NULL DEFAULT 0                 -- reads below this revision fail
);
INSERT INTO kv_revision (revision) VALUES (1);

-- Live keys: the latest version of every key that exists now (fast Range at the current revision).
CREATE TABLE kv (
  key             bytea  PRIMARY KEY,
  create_revision bigint NOT NULL,
  mod_revision    bigint NOT NULL,
  version         bigint NOT NULL CHECK (version > 0),
  lease           bigint NOT NULL DEFAULT 0,
  value           bytea  NOT NULL
);
CREATE INDEX kv_lease ON kv (lease) WHERE lease <> 0;

-- History: one row per key per revision that wrote it, tombstones (version 0) included, until
-- compaction. Historical Range and Watch read here; (mod_revision, seq) is the event order.
CREATE TABLE kv_history (
  key             bytea    NOT NULL,
  mod_revision    bigint   NOT NULL,
  seq             integer  NOT NULL,          -- order of the write inside its revision
  create_revision bigint   NOT NULL,          -- 0 for a tombstone
  version         bigint   NOT NULL,          -- 0 for a tombstone
  lease           bigint   NOT NULL DEFAULT 0,
  value           bytea    NOT NULL,
  PRIMARY KEY (key, mod_revision)
);
CREATE INDEX kv_history_revision ON kv_history (mod_revision, seq);

-- Leases: expiry on the database clock, so it survives restarts and does not depend on any node.
CREATE TABLE kv_leases (
  id          bigint      PRIMARY KEY CHECK (id > 0),
  granted_ttl bigint      NOT NULL CHECK (granted_ttl > 0),
  expires_at  timestamptz NOT NULL,
  granted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kv_leases_expiry ON kv_leases (expires_at);

-- What `dbos sql "select * from kv_keys"` shows: keys and values as text where they are UTF-8.
CREATE VIEW kv_keys AS
  SELECT encode(key, 'escape') AS key, create_revision, mod_revision, version, lease,
         length(value) AS size, CASE WHEN length(value) <= 256 THEN encode(value, 'escape') END AS value
  FROM kv;
