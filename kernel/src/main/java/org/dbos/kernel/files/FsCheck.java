package org.dbos.kernel.files;

/** The consistency checks of {@link FileSystem#check}: each query lists violations as three columns. */
final class FsCheck {
  private FsCheck() {}

  /** {message format over the three columns, query}. */
  static final String[][] QUERIES = {
      {"inode %s: nlink %s but %s entries name it", """
          SELECT i.ino, i.nlink, coalesce(l.n, 0) FROM fs_inodes i
          LEFT JOIN (SELECT ino, count(*) AS n FROM fs_dentries GROUP BY ino) l ON l.ino = i.ino
          WHERE i.kind <> 'd' AND i.nlink <> coalesce(l.n, 0)"""},
      {"directory %s: nlink %s, expected %s (2 + subdirectories) and exactly one entry", """
          SELECT i.ino, i.nlink, 2 + coalesce(s.n, 0) FROM fs_inodes i
          LEFT JOIN (SELECT d.parent, count(*) AS n FROM fs_dentries d JOIN fs_inodes c ON c.ino = d.ino AND c.kind = 'd'
                     GROUP BY d.parent) s ON s.parent = i.ino
          LEFT JOIN (SELECT ino, count(*) AS n FROM fs_dentries GROUP BY ino) l ON l.ino = i.ino
          WHERE i.kind = 'd' AND (i.nlink <> 2 + coalesce(s.n, 0) OR coalesce(l.n, 0) <> CASE WHEN i.ino = 1 THEN 0 ELSE 1 END)"""},
      {"inode %s (%s, nlink %s): unreachable from the root and not held open", """
          WITH RECURSIVE r(ino) AS (SELECT 1::bigint UNION SELECT d.ino FROM r JOIN fs_dentries d ON d.parent = r.ino)
          SELECT i.ino, i.kind, i.nlink FROM fs_inodes i
          WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.ino = i.ino) AND NOT EXISTS (SELECT 1 FROM fs_orphans o WHERE o.ino = i.ino)"""},
      {"entry %s in inode %s: %s does not exist", """
          SELECT encode(d.name, 'escape'), d.parent, CASE WHEN p.ino IS NULL THEN 'the directory' ELSE 'inode ' || d.ino END
          FROM fs_dentries d LEFT JOIN fs_inodes p ON p.ino = d.parent LEFT JOIN fs_inodes i ON i.ino = d.ino
          WHERE p.ino IS NULL OR i.ino IS NULL"""},
      {"entry %s in inode %s (%s): the parent is not a directory", """
          SELECT encode(d.name, 'escape'), d.parent, p.kind FROM fs_dentries d JOIN fs_inodes p ON p.ino = d.parent
          WHERE p.kind <> 'd'"""},
      {"inode %s chunk %s: current chunk of a missing or non-file inode (%s)", """
          SELECT c.ino, c.chunk_no, coalesce(i.kind, 'missing') FROM fs_chunks c LEFT JOIN fs_inodes i ON i.ino = c.ino
          WHERE c.to_version IS NULL AND (i.ino IS NULL OR i.kind <> 'f')"""},
      {"inode %s chunk %s: extends past the file's size or chunk size (length %s)", """
          SELECT c.ino, c.chunk_no, c.length FROM fs_chunks c JOIN fs_inodes i ON i.ino = c.ino
          WHERE c.to_version IS NULL AND (c.chunk_no * i.chunk_size + c.length > i.size OR c.length > i.chunk_size)"""},
      {"inode %s chunk %s (from version %s): its blob is missing", """
          SELECT c.ino, c.chunk_no, c.from_version FROM fs_chunks c LEFT JOIN fs_blobs b ON b.hash = c.hash
          WHERE b.hash IS NULL"""},
      {"inode %s chunk %s: length %s differs from its blob's", """
          SELECT c.ino, c.chunk_no, c.length FROM fs_chunks c JOIN fs_blobs b ON b.hash = c.hash
          WHERE c.to_version IS NULL AND octet_length(b.data) <> c.length"""},
      {"inode %s: symlink size %s, target %s bytes", """
          SELECT ino, size, octet_length(target) FROM fs_inodes WHERE kind = 'l' AND size <> coalesce(octet_length(target), -1)"""},
  };

  static final String BAD_HASH = "SELECT encode(hash, 'hex') FROM fs_blobs WHERE sha256(data) <> hash LIMIT 100";
  static final String GARBAGE = "SELECT count(*) FROM fs_blobs b WHERE NOT EXISTS (SELECT 1 FROM fs_chunks c WHERE c.hash = b.hash)";
}
