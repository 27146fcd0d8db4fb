-- DBFS analytics for `dbos sql` (read-only role dbos_reader): every file with its path, and the
-- questions an administrator asks. Names are shown with non-UTF-8 bytes escaped.

-- A mode as four octal digits, as ls and stat show it.
CREATE FUNCTION fs_octal(n integer) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT string_agg(((n >> (3 * k)) & 7)::text, '' ORDER BY k DESC) FROM generate_series(0, 3) k
$$;

-- Every reachable inode with its full path (one row per name: hard links appear once per name).
CREATE VIEW fs_files AS
  WITH RECURSIVE walk(ino, path, depth) AS (
    SELECT 1::bigint, '/'::text, 0
    UNION ALL
    SELECT d.ino, CASE WHEN w.path = '/' THEN '/' ELSE w.path || '/' END || encode(d.name, 'escape'), w.depth + 1
    FROM walk w JOIN fs_dentries d ON d.parent = w.ino
  )
  SELECT w.path, i.ino,
         CASE i.kind WHEN 'f' THEN 'file' WHEN 'd' THEN 'directory' ELSE 'symlink' END AS kind,
         i.size, fs_octal(i.mode) AS mode, i.uid, i.gid, p.name AS owner, i.nlink,
         to_timestamp(i.mtime / 1e9) AS modified, to_timestamp(i.ctime / 1e9) AS changed,
         to_timestamp(i.btime / 1e9) AS created, i.version, w.depth
  FROM walk w JOIN fs_inodes i ON i.ino = w.ino LEFT JOIN principals p ON p.uid = i.uid;

-- Largest files first: `SELECT * FROM fs_largest_files LIMIT 10`.
CREATE VIEW fs_largest_files AS
  SELECT path, size, owner, modified FROM fs_files WHERE kind = 'file' ORDER BY size DESC, path;

-- Space and file counts per owner (by uid; owner is NULL for a uid that is no principal).
CREATE VIEW fs_usage_by_owner AS
  SELECT i.uid, p.name AS owner, count(*) FILTER (WHERE i.kind = 'f') AS files,
         count(*) FILTER (WHERE i.kind = 'd') AS directories, coalesce(sum(i.size) FILTER (WHERE i.kind = 'f'), 0) AS bytes
  FROM fs_inodes i LEFT JOIN principals p ON p.uid = i.uid
  GROUP BY i.uid, p.name ORDER BY bytes DESC;

-- Files whose content or metadata changed since a time: `SELECT * FROM fs_changed_since(now() - interval '1 hour')`.
CREATE FUNCTION fs_changed_since(since timestamptz)
  RETURNS TABLE (path text, kind text, size bigint, owner text, changed timestamptz)
  LANGUAGE sql STABLE AS $$
    SELECT path, kind, size, owner, changed FROM fs_files WHERE changed >= since ORDER BY changed DESC, path
  $$;

-- Files with identical content (same chunk hashes in the same order), biggest waste first.
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

GRANT EXECUTE ON FUNCTION fs_changed_since(timestamptz) TO dbos_reader;
