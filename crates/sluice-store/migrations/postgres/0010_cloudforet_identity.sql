-- Cloudforet identity v2 resources other than jobs: providers, trusted accounts, and what syncs
-- create (workspaces, project groups, projects, service accounts). One table, a row per resource
-- keyed by (kind, domain, id); the columns the query language filters on are real columns, the
-- rest of the resource is JSON text in info. Trusted-account secrets are sealed in secret_enc.
CREATE TABLE cf_resources (
    kind               TEXT NOT NULL,
    domain_id          TEXT NOT NULL,
    id                 TEXT NOT NULL,
    workspace_id       TEXT NOT NULL,
    name               TEXT NOT NULL,
    reference_id       TEXT,
    parent_id          TEXT,
    trusted_account_id TEXT,
    provider           TEXT,
    info               TEXT NOT NULL,
    secret_enc         BYTEA,
    schedule_hours     TEXT,
    last_scheduled     BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (kind, domain_id, id)
);
CREATE INDEX cf_resources_by_workspace ON cf_resources (kind, domain_id, workspace_id, created_at);
CREATE INDEX cf_resources_by_reference ON cf_resources (kind, domain_id, workspace_id, reference_id);
CREATE INDEX cf_resources_scheduled ON cf_resources (kind, schedule_hours);

-- Account-collector plugins by id: where Sluice calls them.
CREATE TABLE cf_plugins (
    plugin_id  TEXT PRIMARY KEY,
    endpoint   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
