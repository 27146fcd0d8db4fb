-- The watch hubs (org.dbos.kernel.kv.Watches, one per node or CLI client) that have watchers now. A
-- write batch sends NOTIFY dbos_kv only while a hub other than its own node's is listed: a NOTIFY holds
-- PostgreSQL's notify lock through the commit's WAL flush and wakes every listening backend and its
-- client, work wasted when no one elsewhere watches (the writer hands its own hub its events directly).
-- A hub with watchers refreshes its row every second and deletes it when it has none; a row not seen
-- for 10 s is a dead hub's and ignored (the next hub to register deletes it). The hubs' 1 s poll
-- still bounds the delay of a write that missed a newly registered hub.
CREATE TABLE kv_watch_hubs (
  id      uuid        PRIMARY KEY,
  seen_at timestamptz NOT NULL DEFAULT now()
);
