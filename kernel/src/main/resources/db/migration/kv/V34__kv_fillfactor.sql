-- A Put rewrites its key's row in kv. With room left on the row's page PostgreSQL makes that a HOT
-- update (no new entry in kv_pkey, the old version pruned in place); on full pages every overwrite
-- also inserted into the index. Measured on 256-put batches over 10,000 keys (statement time per put,
-- kv + kv_history, asynchronous commit): fillfactor 100: 43-45 % HOT, 25.6 / 34.5 µs;
-- fillfactor 50: 100 % HOT, 21.0 / 25.3 µs. Applies to pages written from now on.
ALTER TABLE kv SET (fillfactor = 50);
