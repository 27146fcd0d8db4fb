-- Retention: FileSystem.purge forgets the versions and removed names older than the retention
-- period, oldest first, a bounded batch per call; these indexes find them without a scan.
CREATE INDEX fs_inode_history_replaced ON fs_inode_history (replaced_at);
CREATE INDEX fs_dentry_history_removed ON fs_dentry_history (removed_at);
