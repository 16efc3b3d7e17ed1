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
    id         BIGSERIAL PRIMARY KEY,
    lane       TEXT NOT NULL CHECK (lane IN ('emergency', 'routine')),
    payload    TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued', 'released', 'running', 'dead')),
    run_at     BIGINT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    worker_id  TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX job_backlog_due ON job_backlog (lane, state, run_at);
CREATE INDEX job_backlog_stale ON job_backlog (state, updated_at);

-- Probe jobs record each run here: readiness checks, queue tests and `hejnal bench`.
CREATE TABLE probe_runs (
    id          BIGSERIAL PRIMARY KEY,
    probe_id    TEXT NOT NULL,
    worker_id   TEXT NOT NULL,
    lane        TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX probe_runs_probe ON probe_runs (probe_id);

-- City officials and their API tokens. Passwords are argon2id PHC strings; tokens are kept
-- only as SHA-256 digests.
CREATE TABLE officials (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'author', 'approver', 'analyst')),
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at   TIMESTAMPTZ
);

CREATE TABLE api_tokens (
    id          BIGSERIAL PRIMARY KEY,
    official_id BIGINT NOT NULL REFERENCES officials (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
