-- A node's writer runs two batches at once (one statement executing while the other's COMMIT waits
-- for its WAL flush); the clock row's lock orders them, and each batch takes its revisions from the
-- clock it locked. Every transaction that moves the clock writes a token of its own into batch and
-- moves the token it replaces into previous_batch, which its UPDATE returns: the transaction just
-- before it in revision order, after whose answers its own are given.
ALTER TABLE kv_revision ADD COLUMN batch uuid, ADD COLUMN previous_batch uuid;
-- No batch assumes where the clock is any more, so none needs to fail when another node moved it.
DROP FUNCTION kv_clock_moved();
