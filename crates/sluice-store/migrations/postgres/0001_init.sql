-- Sluice schema, PostgreSQL dialect. Times are epoch milliseconds (BIGINT); JSON is TEXT.

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    secret_enc    BYTEA NOT NULL,
    principal_arn TEXT NOT NULL,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    expires_at    BIGINT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE action_types (
    category      TEXT NOT NULL,
    owner         TEXT NOT NULL,
    provider      TEXT NOT NULL,
    version       TEXT NOT NULL,
    settings      TEXT NOT NULL,
    properties    TEXT NOT NULL,
    input_min     BIGINT NOT NULL,
    input_max     BIGINT NOT NULL,
    output_min    BIGINT NOT NULL,
    output_max    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    deleted_at    BIGINT,
    PRIMARY KEY (category, owner, provider, version)
);

CREATE TABLE pipelines (
    name           TEXT PRIMARY KEY,
    version        BIGINT NOT NULL,
    pipeline_type  TEXT NOT NULL,
    execution_mode TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE pipeline_versions (
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    declaration TEXT NOT NULL,
    secrets     BYTEA,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE tags (
    resource_arn TEXT NOT NULL,
    tag_key      TEXT NOT NULL,
    tag_value    TEXT NOT NULL,
    PRIMARY KEY (resource_arn, tag_key)
);

CREATE TABLE executions (
    id                 TEXT PRIMARY KEY,
    kind               TEXT NOT NULL,
    tenant             TEXT NOT NULL,
    definition_name    TEXT NOT NULL,
    definition_version BIGINT,
    status             TEXT NOT NULL,
    parent_id          TEXT,
    client_token       TEXT,
    data               TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    finished_at        BIGINT
);
CREATE INDEX executions_by_definition ON executions (kind, tenant, definition_name, created_at, id);
CREATE INDEX executions_by_status ON executions (kind, tenant, status, created_at, id);
CREATE UNIQUE INDEX executions_client_token ON executions (kind, tenant, definition_name, client_token);

CREATE TABLE steps (
    id           TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    name         TEXT NOT NULL,
    position     BIGINT NOT NULL,
    status       TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    data         TEXT NOT NULL,
    error        TEXT,
    started_at   BIGINT,
    finished_at  BIGINT
);
CREATE INDEX steps_by_execution ON steps (execution_id, position);

CREATE TABLE jobs (
    id                 TEXT PRIMARY KEY,
    queue_key          TEXT NOT NULL,
    tenant             TEXT NOT NULL,
    status             TEXT NOT NULL,
    nonce              TEXT,
    lease_until        BIGINT,
    attempt            BIGINT NOT NULL,
    continuation_token TEXT,
    data               TEXT NOT NULL,
    execution_id       TEXT,
    step_id            TEXT,
    error              TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX jobs_claim ON jobs (queue_key, status, created_at);
CREATE INDEX jobs_lease ON jobs (status, lease_until);

CREATE TABLE waits (
    id           TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    step_id      TEXT,
    kind         TEXT NOT NULL,
    token        TEXT,
    due_at       BIGINT,
    data         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    resolved_at  BIGINT
);
CREATE INDEX waits_due ON waits (due_at) WHERE resolved_at IS NULL;
CREATE INDEX waits_by_execution ON waits (execution_id);

CREATE TABLE events (
    seq          BIGSERIAL PRIMARY KEY,
    execution_id TEXT,
    job_id       TEXT,
    actor        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX events_by_execution ON events (execution_id, seq);
