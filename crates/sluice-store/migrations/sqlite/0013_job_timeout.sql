-- A job's run timeout (the action's timeoutInMinutes, in milliseconds) as a column, so that
-- AcknowledgeJob sets an acknowledged job's lease in one statement instead of reading the job
-- first. NULL means the default. Jobs still waiting or running keep the timeout they recorded
-- in their data.
ALTER TABLE jobs ADD COLUMN timeout_millis BIGINT;
UPDATE jobs SET timeout_millis = json_extract(data, '$.timeoutMillis')
    WHERE status IN ('Queued', 'Dispatched', 'InProgress') AND json_valid(data);
