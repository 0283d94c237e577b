-- jobs_open_by_step's predicate becomes three equalities joined by OR instead of an IN list.
-- SQLite checks a partial index's predicate for the old and the new row of every insert, update
-- and delete of a job, and it codes an IN list of three constants as a temporary b-tree that it
-- opens, fills and probes each time: two per claim, acknowledgement and result. Equalities
-- joined by OR are plain comparisons. The query that uses the index (`jobs::abandon_for_step`)
-- names the same expression. (PostgreSQL keeps its IN list: it compares the list in place.)
DROP INDEX jobs_open_by_step;
CREATE INDEX jobs_open_by_step ON jobs (step_id)
    WHERE status = 'Queued' OR status = 'Dispatched' OR status = 'InProgress';
