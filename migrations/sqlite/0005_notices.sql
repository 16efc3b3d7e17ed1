-- Notices (CAP 1.2 shaped) and their deliveries. The notice's whole request is kept as JSON in
-- `spec`; the columns beside it are what queries filter and order on.
CREATE TABLE notices (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL CHECK (kind IN ('alert', 'planned', 'info', 'survey')),
    msg_type       TEXT NOT NULL CHECK (msg_type IN ('Alert', 'Update', 'Cancel')),
    status         TEXT NOT NULL CHECK (status IN ('Actual', 'Exercise', 'Test')),
    severity       TEXT NOT NULL,
    -- The notice an Update or Cancel changes, and the first of its chain (the push Topic).
    references_id  INTEGER REFERENCES notices (id),
    root_id        INTEGER,
    spec           TEXT NOT NULL,
    -- draft → pending → scheduled | published; rejected and cancelled are final.
    state          TEXT NOT NULL CHECK (state IN ('draft', 'pending', 'scheduled', 'published', 'rejected', 'cancelled')),
    lane           TEXT NOT NULL CHECK (lane IN ('emergency', 'routine')),
    send_at        INTEGER,
    expires_at     INTEGER,
    author_id      INTEGER NOT NULL REFERENCES officials (id),
    approver_id    INTEGER REFERENCES officials (id),
    -- How it was cleared to go: 'second_official', 'not_required', 'correction' or 'break_glass'.
    approval       TEXT,
    template_id    INTEGER,
    reject_reason  TEXT,
    recipients     INTEGER,
    created_at     INTEGER NOT NULL,
    submitted_at   INTEGER,
    approved_at    INTEGER,
    published_at   INTEGER,
    fanout_done_at INTEGER,
    cancelled_at   INTEGER
);
CREATE INDEX notices_by_state ON notices (state, id);

-- One per (notice, subscriber, channel): the unique key is what makes a double fan-out harmless.
-- contact_id is cleared by erasure; the row then says only that someone was sent something.
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    notice_id     INTEGER NOT NULL REFERENCES notices (id),
    subscriber_id INTEGER NOT NULL,
    contact_id    INTEGER,
    channel       TEXT NOT NULL,
    language      TEXT NOT NULL,
    -- queued → sending → sent → delivered | failed; expired and cancelled are final too.
    status        TEXT NOT NULL,
    -- Quiet hours: not before this time (ms).
    not_before    INTEGER,
    -- A worker holds a `sending` row until then; afterwards another may take it up.
    lease_until   INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    provider_id   TEXT,
    error         TEXT,
    updated_at    INTEGER NOT NULL,
    UNIQUE (notice_id, subscriber_id, channel)
);
CREATE INDEX deliveries_by_provider_id ON deliveries (provider_id) WHERE provider_id IS NOT NULL;

-- Every try of a delivery and every receipt, in order: the trace from click to provider.
CREATE TABLE delivery_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    worker_id   TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX delivery_events_by_delivery ON delivery_events (delivery_id);

-- Pre-approved notice templates: the break-glass path when no approver can be reached.
CREATE TABLE notice_templates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    author_id   INTEGER NOT NULL REFERENCES officials (id),
    approver_id INTEGER REFERENCES officials (id),
    created_at  INTEGER NOT NULL,
    approved_at INTEGER
);

-- Idempotency-Key: the first answer to a key is kept and given again to every repeat.
-- `status` is NULL while the first request is still being answered.
CREATE TABLE idempotency_keys (
    official_id INTEGER NOT NULL,
    key         TEXT NOT NULL,
    route       TEXT NOT NULL,
    status      INTEGER,
    body        TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (official_id, key, route)
);

-- Residents who receive Exercise and Test notices (the public never does).
ALTER TABLE subscribers ADD COLUMN tester INTEGER NOT NULL DEFAULT 0;
