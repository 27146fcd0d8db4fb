-- A write batch may assume the clock is where this node's writer left it, and lock, check and write in
-- one statement; when another node moved the clock meanwhile, the statement raises this (SQLSTATE
-- DBOSK) and the batch is re-run after reading the clock under its lock.
CREATE FUNCTION kv_clock_moved() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the key-value clock moved' USING ERRCODE = 'DBOSK';
END $$;
