-- The file tables' one-column rules as domains instead of CHECK constraints. PostgreSQL reads a
-- table's CHECK constraints back from their stored text (stringToNode) and plans them again in every
-- INSERT or UPDATE statement that writes the table: for a one-file system call that was ~15 % of
-- PostgreSQL's CPU (perf, `FsProfile put`, one writer). A domain's rules are read once per connection
-- (the type cache), and only the columns a statement writes are checked. The rules are the same.
CREATE DOMAIN fs_kind AS char(1) CHECK (VALUE IN ('f', 'd', 'l', 'p', 's'));  -- file, directory, symlink, fifo, socket
CREATE DOMAIN fs_mode AS integer CHECK (VALUE BETWEEN 0 AND 4095);            -- permission bits incl. suid/sgid/sticky
CREATE DOMAIN fs_links AS integer CHECK (VALUE >= 0);
CREATE DOMAIN fs_offset AS bigint CHECK (VALUE >= 0);                         -- a size, a chunk's number
CREATE DOMAIN fs_length AS integer CHECK (VALUE > 0);                         -- a chunk size, a chunk's length
-- Names are any bytes but '/' and NUL, at most 255 of them, and not "." or "..".
CREATE DOMAIN fs_name AS bytea CHECK (length(VALUE) BETWEEN 1 AND 255 AND position('\x2f'::bytea IN VALUE) = 0
                                      AND position('\x00'::bytea IN VALUE) = 0 AND VALUE NOT IN ('\x2e'::bytea, '\x2e2e'::bytea));

-- A column's type changes only with what reads it out of the way: the views (made again below, as
-- V14 and V11 made them) and the history trigger's WHEN.
DROP VIEW fs_duplicates, fs_largest_files, fs_usage_by_owner, fs_files;
DROP TRIGGER fs_inodes_keep ON fs_inodes;

ALTER TABLE fs_inodes
  DROP CONSTRAINT fs_inodes_kind_check, DROP CONSTRAINT fs_inodes_mode_check, DROP CONSTRAINT fs_inodes_size_check,
  DROP CONSTRAINT fs_inodes_nlink_check, DROP CONSTRAINT fs_inodes_chunk_size_check,
  ALTER COLUMN kind TYPE fs_kind, ALTER COLUMN mode TYPE fs_mode, ALTER COLUMN size TYPE fs_offset,
  ALTER COLUMN nlink TYPE fs_links, ALTER COLUMN chunk_size TYPE fs_length;
ALTER TABLE fs_dentries DROP CONSTRAINT fs_dentries_name_check, ALTER COLUMN name TYPE fs_name;
ALTER TABLE fs_chunks DROP CONSTRAINT fs_chunks_chunk_no_check, DROP CONSTRAINT fs_chunks_length_check,
  ALTER COLUMN chunk_no TYPE fs_offset, ALTER COLUMN length TYPE fs_length;

CREATE TRIGGER fs_inodes_keep AFTER UPDATE ON fs_inodes FOR EACH ROW
  WHEN (OLD.kind <> 'd' AND OLD.version <> NEW.version)
  EXECUTE FUNCTION fs_inode_keep();

CREATE VIEW fs_files AS
  WITH RECURSIVE walk(ino, path, depth) AS (
    SELECT 1::bigint, '/'::text, 0
    UNION ALL
    SELECT d.ino, CASE WHEN w.path = '/' THEN '/' ELSE w.path || '/' END || encode(d.name, 'escape'), w.depth + 1
    FROM walk w JOIN fs_dentries d ON d.parent = w.ino
  )
  SELECT w.path, i.ino,
         CASE i.kind WHEN 'f' THEN 'file' WHEN 'd' THEN 'directory' WHEN 'l' THEN 'symlink'
                     WHEN 'p' THEN 'fifo' ELSE 'socket' END AS kind,
         i.size::bigint AS size, fs_octal(i.mode) AS mode, i.uid, i.gid, p.name AS owner, i.nlink::integer AS nlink,
         to_timestamp(i.mtime / 1e9) AS modified, to_timestamp(i.ctime / 1e9) AS changed,
         to_timestamp(i.btime / 1e9) AS created, i.version, w.depth
  FROM walk w JOIN fs_inodes i ON i.ino = w.ino LEFT JOIN principals p ON p.uid = i.uid;

CREATE VIEW fs_largest_files AS
  SELECT path, size, owner, modified FROM fs_files WHERE kind = 'file' ORDER BY size DESC, path;

CREATE VIEW fs_usage_by_owner AS
  SELECT i.uid, p.name AS owner, count(*) FILTER (WHERE i.kind = 'f') AS files,
         count(*) FILTER (WHERE i.kind = 'd') AS directories, coalesce(sum(i.size) FILTER (WHERE i.kind = 'f'), 0) AS bytes
  FROM fs_inodes i LEFT JOIN principals p ON p.uid = i.uid
  GROUP BY i.uid, p.name ORDER BY bytes DESC;

CREATE VIEW fs_duplicates AS
  WITH content AS (
    SELECT c.ino, sha256(string_agg(c.hash, ''::bytea ORDER BY c.chunk_no)) AS digest
    FROM fs_chunks c WHERE c.to_version IS NULL GROUP BY c.ino
  )
  SELECT encode(ct.digest, 'hex') AS content_sha, min(f.size) AS size, count(DISTINCT f.ino) AS copies,
         (count(DISTINCT f.ino) - 1) * min(f.size) AS wasted_bytes, array_agg(f.path ORDER BY f.path) AS paths
  FROM content ct JOIN fs_files f ON f.ino = ct.ino AND f.kind = 'file'
  GROUP BY ct.digest HAVING count(DISTINCT f.ino) > 1
  ORDER BY wasted_bytes DESC;
