-- The kernel's tables: principals and their rights, sessions, nodes, and the audit log.
-- Every other service's tables live beside these in schema dbos and reference principals.

CREATE TABLE principals (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text        NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$'),
  kind        text        NOT NULL CHECK (kind IN ('user', 'service', 'node')),
  uid         integer     NOT NULL UNIQUE CHECK (uid >= 0),    -- POSIX identity for the file system
  gid         integer     NOT NULL CHECK (gid >= 0),
  is_admin    boolean     NOT NULL DEFAULT false,
  secret_hash text,                                            -- PBKDF2; NULL: cannot log in
  disabled    boolean     NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Supplementary POSIX groups of a principal.
CREATE TABLE principal_groups (
  principal_id bigint  NOT NULL REFERENCES principals ON DELETE CASCADE,
  gid          integer NOT NULL,
  PRIMARY KEY (principal_id, gid)
);

-- A right on every object whose name starts with object_prefix ('' = everything).
CREATE TABLE grants (
  principal_id  bigint NOT NULL REFERENCES principals ON DELETE CASCADE,
  right_name    text   NOT NULL CHECK (right_name IN ('READ', 'WRITE', 'EXECUTE', 'ADMIN')),
  object_prefix text   NOT NULL,
  granted_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal_id, right_name, object_prefix)
);

-- is_admin is the principal's flag when the session opened; disabling a principal closes its
-- sessions, so a system call's check reads this one row instead of joining principals.
CREATE TABLE sessions (
  id           uuid        PRIMARY KEY,
  principal_id bigint      NOT NULL REFERENCES principals ON DELETE CASCADE,
  is_admin     boolean     NOT NULL,
  node_id      uuid,
  task_id      text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  closed_at    timestamptz
);

-- One row per incarnation of a `dbos up` process: a restarted node is a new row.
CREATE TABLE nodes (
  id           uuid        PRIMARY KEY,
  host         text        NOT NULL,
  pid          bigint      NOT NULL,
  data_dir     text        NOT NULL,
  cpus         integer     NOT NULL CHECK (cpus > 0),
  memory_mb    bigint      NOT NULL CHECK (memory_mb > 0),
  labels       jsonb       NOT NULL DEFAULT '{}',
  http_address text,
  version      text        NOT NULL,
  status       text        NOT NULL CHECK (status IN ('alive', 'dead', 'stopped')),
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  ended_at     timestamptz
);
CREATE INDEX nodes_alive ON nodes (heartbeat_at) WHERE status = 'alive';

-- Append-only. id is a UUIDv7 (time ordered), so inserts append to the index's right edge, and the
-- primary key doubles as the time index: WHERE id >= uuid7_floor(T) finds the calls since T.
-- No other index (each costs every system call an index insert), no foreign keys: the record
-- outlives what it names.
CREATE TABLE audit_log (
  id           uuid        PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT now(),
  principal_id bigint,
  session_id   uuid,
  node_id      uuid,
  task_id      text,
  call         text        NOT NULL,
  object       text        NOT NULL,
  outcome      text        NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
  detail       text
);

-- The smallest UUIDv7 of instant t: a lower bound for audit_log.id.
CREATE FUNCTION uuid7_floor(t timestamptz) RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '70008000000000000000')::uuid
$$;

-- What `dbos sql "select * from audit"` shows.
CREATE VIEW audit AS
  SELECT a.at, p.name AS principal, a.call, a.object, a.outcome, a.detail, a.node_id, a.task_id, a.id
  FROM audit_log a LEFT JOIN principals p ON p.id = a.principal_id;

-- `dbos sql` runs as this role: read-only over the OS tables, never the secrets.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dbos_reader') THEN
    CREATE ROLE dbos_reader NOLOGIN;
  END IF;
END $$;
GRANT USAGE ON SCHEMA dbos TO dbos_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA dbos TO dbos_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA dbos GRANT SELECT ON TABLES TO dbos_reader;
REVOKE SELECT ON principals FROM dbos_reader;
GRANT SELECT (id, name, kind, uid, gid, is_admin, disabled, created_at) ON principals TO dbos_reader;

-- uids handed to new principals; below 1000 are reserved like on Linux.
CREATE SEQUENCE principal_uid START 1000;

-- Built in: admin (uid 0, like root; its password is set by the first node that starts) and system,
-- the kernel's own identity for housekeeping (no password: only a node in-process can act as it).
INSERT INTO principals (name, kind, uid, gid, is_admin) VALUES
  ('admin', 'user', 0, 0, true),
  ('system', 'service', 1, 1, true);

-- `dbos sql` reads through this function. It runs as dbos_reader (SECURITY DEFINER), where
-- PostgreSQL forbids SET ROLE and set_config('role'), and wraps the text as a subquery, so exactly
-- one query runs, with no way back to the caller's privileges.
CREATE FUNCTION sql_read(query text) RETURNS SETOF json
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = dbos, pg_catalog AS $$
BEGIN
  RETURN QUERY EXECUTE 'SELECT to_json(q) FROM (' || query || E'\n) AS q';
END $$;
ALTER FUNCTION sql_read(text) OWNER TO dbos_reader;

-- Raised by a system call's audit statement when the caller may not make the call: the statement
-- runs just before COMMIT, in the same round trip, so the error aborts the call's transaction.
CREATE FUNCTION deny(detail text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'DBOSD', MESSAGE = detail;
END $$;
