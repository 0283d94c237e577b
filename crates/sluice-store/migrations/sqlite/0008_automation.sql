-- SSM Automation executions share the executions table: the step they are at and its action
-- (DescribeAutomationExecutions filters on CurrentAction), and indexes for listing every
-- execution of a kind newest first and for finding an execution's children.
ALTER TABLE executions ADD COLUMN current_step TEXT;
ALTER TABLE executions ADD COLUMN current_action TEXT;
CREATE INDEX executions_by_kind ON executions (kind, tenant, created_at, id);
CREATE INDEX executions_by_parent ON executions (parent_id);
