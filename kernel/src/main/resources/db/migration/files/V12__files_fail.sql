-- Raises a file-system error, named by its errno (ENOENT, EEXIST, …), from SQL. A system call's last
-- statement travels with its audit row and COMMIT (Tx.last), so it cannot return a row for the caller
-- to reject: it refuses by raising this instead, which rolls the whole call back.
CREATE FUNCTION fs_fail(errno text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'DBFSE', MESSAGE = errno;
END $$;
