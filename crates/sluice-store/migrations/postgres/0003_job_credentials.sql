-- Temporary artifact credentials minted per job: the session token is kept as a SHA-256 hash,
-- the scope (objects the job may read and write) as JSON text.
ALTER TABLE access_keys ADD COLUMN session_token_hash TEXT;
ALTER TABLE access_keys ADD COLUMN job_id TEXT;
ALTER TABLE access_keys ADD COLUMN scope TEXT;
CREATE INDEX access_keys_by_job ON access_keys (job_id);
