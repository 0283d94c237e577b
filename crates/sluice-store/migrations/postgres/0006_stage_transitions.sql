-- Disabled inbound stage transitions: executions wait before the stage until it is enabled.
CREATE TABLE stage_transitions (
    pipeline    TEXT NOT NULL,
    stage       TEXT NOT NULL,
    enabled     BIGINT NOT NULL,
    reason      TEXT,
    changed_by  TEXT NOT NULL,
    changed_at  BIGINT NOT NULL,
    PRIMARY KEY (pipeline, stage)
);
