-- Artifact objects: the bytes live in the artifact directory under `file`; this row is the
-- durable record that the object exists (written after the file is synced, deleted before it).
CREATE TABLE objects (
    bucket        TEXT NOT NULL,
    object_key    TEXT NOT NULL,
    file          TEXT NOT NULL,
    size          BIGINT NOT NULL,
    etag          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    last_modified BIGINT NOT NULL,
    PRIMARY KEY (bucket, object_key)
);
