-- The statements that write fs_dentries guarantee what its two foreign keys checked again: an entry
-- goes in with the statement that locks its directory's row (an UPDATE of it, which finds nothing
-- once the directory is gone) and that inserts or locks its inode (link's nlink update fails the call
-- if the inode went meanwhile), and an inode is deleted only when no entry names it (nlink 0; a
-- directory only once empty, under its row lock). The checks cost every create, mkdir, link and
-- rename two more queries: 6 % of PostgreSQL's CPU per file of a tar -x (docs/BENCHMARKS.md).
-- `dbos fs check` verifies that every entry's directory and inode exist.
ALTER TABLE fs_dentries DROP CONSTRAINT fs_dentries_parent_fkey, DROP CONSTRAINT fs_dentries_ino_fkey;
