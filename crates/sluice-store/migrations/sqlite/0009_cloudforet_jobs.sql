-- Cloudforet identity v2 collector jobs. One row per Job as Cloudforet shows it; the sync that
-- runs it is a job on the engine queue. Workspace '*' marks a domain-level job.
-- Times are epoch milliseconds; options is JSON text.
CREATE TABLE cf_jobs (
    job_id             TEXT PRIMARY KEY,
    domain_id          TEXT NOT NULL,
    workspace_id       TEXT NOT NULL,
    resource_group     TEXT NOT NULL,
    trusted_account_id TEXT NOT NULL,
    plugin_id          TEXT NOT NULL,
    status             TEXT NOT NULL,
    options            TEXT NOT NULL,
    error_code         TEXT,
    error_message      TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    finished_at        BIGINT
);
CREATE INDEX cf_jobs_by_domain ON cf_jobs (domain_id, created_at, job_id);
CREATE INDEX cf_jobs_by_status ON cf_jobs (domain_id, status, created_at);
CREATE INDEX cf_jobs_by_account ON cf_jobs (domain_id, trusted_account_id, status, created_at);
-- Lists filtered by plugin and status count their matches, and stats group by plugin and status,
-- from this index alone (docs/BENCHMARKS.md).
CREATE INDEX cf_jobs_by_plugin ON cf_jobs (domain_id, plugin_id, status, created_at);
