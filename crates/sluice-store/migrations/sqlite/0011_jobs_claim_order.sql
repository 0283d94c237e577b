-- A claim takes queued jobs in (created_at, id) order. With id in the index the order comes
-- from the index itself; without it SQLite sorted every queued job of the queue in a temporary
-- b-tree on each claim.
DROP INDEX jobs_claim;
CREATE INDEX jobs_claim ON jobs (queue_key, status, created_at, id);
