-- Named pipes (mkfifo) and Unix-domain socket files: inodes with a type and attributes only. Their
-- data never reaches DBFS: the kernel of the machine that opens one moves it, as on any file system.
ALTER TABLE fs_inodes DROP CONSTRAINT fs_inodes_kind_check;
ALTER TABLE fs_inodes ADD CONSTRAINT fs_inodes_kind_check CHECK (kind IN ('f', 'd', 'l', 'p', 's'));

CREATE OR REPLACE VIEW fs_files AS
  WITH RECURSIVE walk(ino, path, depth) AS (
    SELECT 1::bigint, '/'::text, 0
    UNION ALL
    SELECT d.ino, CASE WHEN w.path = '/' THEN '/' ELSE w.path || '/' END || encode(d.name, 'escape'), w.depth + 1
    FROM walk w JOIN fs_dentries d ON d.parent = w.ino
  )
  SELECT w.path, i.ino,
         CASE i.kind WHEN 'f' THEN 'file' WHEN 'd' THEN 'directory' WHEN 'l' THEN 'symlink'
                     WHEN 'p' THEN 'fifo' ELSE 'socket' END AS kind,
         i.size, fs_octal(i.mode) AS mode, i.uid, i.gid, p.name AS owner, i.nlink,
         to_timestamp(i.mtime / 1e9) AS modified, to_timestamp(i.ctime / 1e9) AS changed,
         to_timestamp(i.btime / 1e9) AS created, i.version, w.depth
  FROM walk w JOIN fs_inodes i ON i.ino = w.ino LEFT JOIN principals p ON p.uid = i.uid;
