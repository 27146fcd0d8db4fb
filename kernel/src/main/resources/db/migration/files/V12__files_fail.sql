-- Raises a file-system error, named by its errno (ENOENT, EEXIST, …), from SQL. A system call's last
-- statement travels with its audit row and COMMIT (Tx.last), so it cannot return a row for the caller
-- to reject: it refuses by raising this instead, which rolls the whole call back.
CREATE FUNCTION fs_fail(errno text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'DBFSE', MESSAGE = errno;
END $$;

-- Raises a serialization failure: the kernel runs the system call again. For a statement that relied
-- on what the caller knew of an inode (its version) and finds it changed.
CREATE FUNCTION fs_conflict() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'serialization_failure', MESSAGE = 'the inode changed';
END $$;
