-- events.seq becomes a plain rowid alias instead of AUTOINCREMENT. AUTOINCREMENT only differs
-- when the row with the largest seq is deleted (its number is then never used again), and no
-- event is ever deleted; but it reads and rewrites the table's row in sqlite_sequence on every
-- insert, one more page in nearly every group commit (3% of the WAL frames of a B1 run). New
-- events still get the largest seq plus one, so seq keeps its order.
CREATE TABLE events_by_rowid (
    seq          INTEGER PRIMARY KEY,
    execution_id TEXT,
    job_id       TEXT,
    actor        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    at           BIGINT NOT NULL
);
INSERT INTO events_by_rowid (seq, execution_id, job_id, actor, kind, subject, detail, at)
    SELECT seq, execution_id, job_id, actor, kind, subject, detail, at FROM events;
DROP TABLE events;
ALTER TABLE events_by_rowid RENAME TO events;
CREATE INDEX events_by_execution ON events (execution_id, seq);
