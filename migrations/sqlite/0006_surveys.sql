-- Surveys, polls and consultations; their invitations and responses.
-- A survey's texts and questions are kept as JSON in `spec` (the official's request); the
-- columns beside it are what queries filter on. `kind` lets consultations extend surveys.
CREATE TABLE surveys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL CHECK (kind IN ('survey', 'poll', 'consultation')),
    -- draft → (pending →) published → closed. Questions change only while draft.
    state        TEXT NOT NULL CHECK (state IN ('draft', 'pending', 'published', 'closed')),
    -- Set: anyone may answer at /s/open/{slug}.
    slug         TEXT UNIQUE,
    spec         TEXT NOT NULL,
    -- The audience invited at publish, as JSON (districts, interests, channels).
    audience     TEXT,
    opens_at     INTEGER,
    closes_at    INTEGER,
    author_id    INTEGER NOT NULL REFERENCES officials (id),
    approver_id  INTEGER REFERENCES officials (id),
    -- The notice (kind 'survey') that carries the invitations through the broadcast pipeline.
    notice_id    INTEGER REFERENCES notices (id),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    published_at INTEGER,
    closed_at    INTEGER
);
CREATE INDEX surveys_by_notice ON surveys (notice_id);

-- One per (survey, resident) invited. The link is `/s/{id}.{HMAC}`, so nothing secret is
-- stored. district_mask (the invited districts the resident lived in) and channel_mask (1 email,
-- 2 sms, 4 push: what the invitation went over) are copied at invitation time, so that
-- response rates per district and channel need no contact data. Erasure clears subscriber_id:
-- the answers stay, tied to nobody.
CREATE TABLE survey_invitations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    survey_id     INTEGER NOT NULL REFERENCES surveys (id),
    subscriber_id INTEGER,
    language      TEXT NOT NULL,
    district_mask BIGINT NOT NULL,
    channel_mask  BIGINT NOT NULL,
    created_at    INTEGER NOT NULL,
    erased_at     INTEGER,
    UNIQUE (survey_id, subscriber_id)
);
CREATE INDEX survey_invitations_by_subscriber ON survey_invitations (subscriber_id);

-- One row per invitation (UNIQUE invitation_id: the database, not the code, makes a token
-- answer once), or per browser for open answers (browser_hash: SHA-256 of the cookie token).
-- A new answer replaces the old one (upsert, `revision` counts them). ip_digest is a keyed
-- digest of the client address, only to flag open answers from one address as duplicates.
CREATE TABLE survey_responses (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    survey_id     INTEGER NOT NULL REFERENCES surveys (id),
    invitation_id INTEGER UNIQUE REFERENCES survey_invitations (id),
    browser_hash  TEXT,
    ip_digest     TEXT,
    answers       TEXT NOT NULL,
    revision      INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (survey_id, browser_hash),
    CHECK ((invitation_id IS NULL) <> (browser_hash IS NULL))
);
CREATE INDEX survey_responses_by_survey ON survey_responses (survey_id, id);
CREATE INDEX survey_responses_by_address ON survey_responses (survey_id, ip_digest);
