-- DBFS: the file system in the database. Inodes, directory entries, and file data in fixed-size
-- chunks. Data is copy-on-write and content-addressed: a write never changes a stored chunk, it
-- closes the chunk row that mapped that part of the file (to_version) and adds a new one, and chunk
-- contents live once per distinct content in fs_blobs. Old versions therefore cost only their
-- changed chunks; restore/time travel reads the rows whose [from_version, to_version) holds a version.

CREATE SEQUENCE fs_inode_ids START 2;   -- 1 is the root directory

-- The transaction's time in nanoseconds since the epoch (PostgreSQL keeps microseconds).
CREATE FUNCTION fs_now() RETURNS bigint LANGUAGE sql STABLE AS
  $$ SELECT (extract(epoch FROM now()) * 1000000000)::bigint $$;

CREATE TABLE fs_inodes (
  ino        bigint      PRIMARY KEY,
  kind       char(1)     NOT NULL CHECK (kind IN ('f', 'd', 'l')),   -- file, directory, symlink
  mode       integer     NOT NULL CHECK (mode BETWEEN 0 AND 4095),   -- permission bits incl. suid/sgid/sticky
  uid        integer     NOT NULL,
  gid        integer     NOT NULL,
  size       bigint      NOT NULL DEFAULT 0 CHECK (size >= 0),
  nlink      integer     NOT NULL CHECK (nlink >= 0),
  -- Times in nanoseconds since the epoch, as POSIX keeps them (rsync and make compare nanoseconds);
  -- the fs_files view shows them as timestamptz.
  atime      bigint      NOT NULL DEFAULT fs_now(),
  mtime      bigint      NOT NULL DEFAULT fs_now(),
  ctime      bigint      NOT NULL DEFAULT fs_now(),
  btime      bigint      NOT NULL DEFAULT fs_now(),
  version    bigint      NOT NULL DEFAULT 1,                          -- bumped by every change
  chunk_size integer     NOT NULL DEFAULT 262144 CHECK (chunk_size > 0),  -- per inode: changing the default is one UPDATE
  target     bytea                                                    -- symlink target
);

-- Names are any bytes but '/' and NUL, at most 255 of them.
CREATE TABLE fs_dentries (
  parent bigint NOT NULL REFERENCES fs_inodes ON DELETE CASCADE,
  name   bytea  NOT NULL CHECK (length(name) BETWEEN 1 AND 255 AND position('\x2f'::bytea IN name) = 0
                                AND position('\x00'::bytea IN name) = 0 AND name NOT IN ('\x2e'::bytea, '\x2e2e'::bytea)),
  ino    bigint NOT NULL REFERENCES fs_inodes,
  PRIMARY KEY (parent, name)
);
CREATE INDEX fs_dentries_ino ON fs_dentries (ino);

-- Chunk contents, once per distinct content (SHA-256). Stored uncompressed out of line so reads of a
-- slice fetch only the TOAST pieces they need.
CREATE TABLE fs_blobs (
  hash bytea PRIMARY KEY,
  data bytea NOT NULL
);
ALTER TABLE fs_blobs ALTER COLUMN data SET STORAGE EXTERNAL;

-- Which blob holds chunk chunk_no of an inode, from version from_version until to_version (NULL: current).
-- No foreign key to fs_inodes: history outlives a deleted file until the retention purge.
CREATE TABLE fs_chunks (
  ino          bigint  NOT NULL,
  chunk_no     bigint  NOT NULL CHECK (chunk_no >= 0),
  from_version bigint  NOT NULL,
  to_version   bigint,
  closed_at    timestamptz,
  hash         bytea   NOT NULL,
  length       integer NOT NULL CHECK (length > 0),
  PRIMARY KEY (ino, chunk_no, from_version)
);
CREATE UNIQUE INDEX fs_chunks_current ON fs_chunks (ino, chunk_no) INCLUDE (hash, length) WHERE to_version IS NULL;
CREATE INDEX fs_chunks_hash ON fs_chunks (hash);
CREATE INDEX fs_chunks_closed ON fs_chunks (closed_at) WHERE to_version IS NOT NULL;

-- Unlinked inodes kept alive by open handles on a node; reclaimed at release or when the node is gone.
CREATE TABLE fs_orphans (
  ino     bigint PRIMARY KEY REFERENCES fs_inodes ON DELETE CASCADE,
  node_id uuid
);

-- Old inode rows and removed entries, for restore and time travel (a later issue reads them).
CREATE TABLE fs_inode_history (LIKE fs_inodes, replaced_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX fs_inode_history_ino ON fs_inode_history (ino, version);
CREATE TABLE fs_dentry_history (parent bigint, name bytea, ino bigint, removed_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX fs_dentry_history_parent ON fs_dentry_history (parent, name);

CREATE FUNCTION fs_inode_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fs_inode_history SELECT OLD.*, now();
  RETURN NULL;
END $$;
-- Every change of content or metadata bumps version; link-count and directory changes do not,
-- so directories do not flood the history.
CREATE TRIGGER fs_inodes_keep AFTER UPDATE ON fs_inodes FOR EACH ROW
  WHEN (OLD.kind <> 'd' AND OLD.version <> NEW.version)
  EXECUTE FUNCTION fs_inode_keep();
CREATE TRIGGER fs_inodes_keep_deleted AFTER DELETE ON fs_inodes FOR EACH ROW EXECUTE FUNCTION fs_inode_keep();

CREATE FUNCTION fs_dentry_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fs_dentry_history (parent, name, ino) VALUES (OLD.parent, OLD.name, OLD.ino);
  RETURN NULL;
END $$;
CREATE TRIGGER fs_dentries_keep AFTER DELETE OR UPDATE ON fs_dentries FOR EACH ROW EXECUTE FUNCTION fs_dentry_keep();

-- The root: owned by root, world-readable, like a fresh ext4.
INSERT INTO fs_inodes (ino, kind, mode, uid, gid, nlink) VALUES (1, 'd', 493, 0, 0, 2);
