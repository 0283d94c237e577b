-- A step that ends early fails its unfinished jobs and resolves its open waits, found by step id
-- (`jobs::abandon_for_step`, `executions::resolve_waits`): every SSM Automation step as it
-- finishes, every in-progress action of an execution stopped with abandon, every approval
-- answered. Without an index each of these read the whole table, which only grows. Partial, so
-- finished jobs and resolved waits cost nothing to keep indexed.
CREATE INDEX jobs_open_by_step ON jobs (step_id) WHERE status IN ('Queued', 'Dispatched', 'InProgress');
CREATE INDEX waits_open_by_step ON waits (step_id) WHERE resolved_at IS NULL;
