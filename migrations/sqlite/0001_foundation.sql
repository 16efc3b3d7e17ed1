-- Reference data: what residents subscribe to.
CREATE TABLE districts (
    slug     TEXT PRIMARY KEY,
    number   TEXT NOT NULL,
    position INTEGER NOT NULL,
    name_pl  TEXT NOT NULL,
    name_en  TEXT NOT NULL,
    name_uk  TEXT NOT NULL
);

CREATE TABLE interests (
    slug     TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    name_pl  TEXT NOT NULL,
    name_en  TEXT NOT NULL,
    name_uk  TEXT NOT NULL
);

-- The queue of record (crate hejnal-jobs). Times are ms since the epoch, by the database clock.
CREATE TABLE job_backlog (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    lane       TEXT NOT NULL CHECK (lane IN ('emergency', 'routine')),
    payload    TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued', 'released', 'running', 'dead')),
    run_at     INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    worker_id  TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX job_backlog_due ON job_backlog (lane, state, run_at);
CREATE INDEX job_backlog_stale ON job_backlog (state, updated_at);

-- Probe jobs record each run here: readiness checks, queue tests and `hejnal bench`.
CREATE TABLE probe_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    probe_id    TEXT NOT NULL,
    worker_id   TEXT NOT NULL,
    lane        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX probe_runs_probe ON probe_runs (probe_id);

-- City officials and their API tokens. Passwords are argon2id PHC strings; tokens are kept
-- only as SHA-256 digests.
CREATE TABLE officials (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'author', 'approver', 'analyst')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    disabled_at   TEXT
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    official_id INTEGER NOT NULL REFERENCES officials (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
