-- Where a pipeline execution is: the stage it runs in or waits to enter. Stage locks are
-- derived from these columns (see docs/ENGINE.md).
ALTER TABLE executions ADD COLUMN stage_index BIGINT;
ALTER TABLE executions ADD COLUMN stage_state TEXT;
CREATE INDEX executions_in_stage ON executions (definition_name, stage_index, stage_state);
