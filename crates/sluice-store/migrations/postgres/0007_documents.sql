-- SSM Automation documents: one row per document naming its latest and default versions, and
-- every version's content. Names sort bytewise so ListDocuments pages are stable.
CREATE TABLE documents (
    name            TEXT COLLATE "C" PRIMARY KEY,
    document_type   TEXT NOT NULL,
    owner           TEXT NOT NULL,
    latest_version  BIGINT NOT NULL,
    default_version BIGINT NOT NULL,
    last_assigned   BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE document_versions (
    name         TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL,
    version_name TEXT,
    content      TEXT NOT NULL,
    format       TEXT NOT NULL,
    hash         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
