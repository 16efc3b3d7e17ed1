-- Notices (CAP 1.2 shaped) and their deliveries. The notice's whole request is kept as JSON in
-- `spec`; the columns beside it are what queries filter and order on.
CREATE TABLE notices (
    id             BIGSERIAL PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('alert', 'planned', 'info', 'survey')),
    msg_type       TEXT NOT NULL CHECK (msg_type IN ('Alert', 'Update', 'Cancel')),
    status         TEXT NOT NULL CHECK (status IN ('Actual', 'Exercise', 'Test')),
    severity       TEXT NOT NULL,
    -- The notice an Update or Cancel changes, and the first of its chain (the push Topic).
    references_id  BIGINT REFERENCES notices (id),
    root_id        BIGINT,
    spec           TEXT NOT NULL,
    -- draft → pending → scheduled | published; rejected and cancelled are final.
    state          TEXT NOT NULL CHECK (state IN ('draft', 'pending', 'scheduled', 'published', 'rejected', 'cancelled')),
    lane           TEXT NOT NULL CHECK (lane IN ('emergency', 'routine')),
    send_at        BIGINT,
    expires_at     BIGINT,
    author_id      BIGINT NOT NULL REFERENCES officials (id),
    approver_id    BIGINT REFERENCES officials (id),
    -- How it was cleared to go: 'second_official', 'not_required', 'correction' or 'break_glass'.
    approval       TEXT,
    template_id    BIGINT,
    reject_reason  TEXT,
    recipients     BIGINT,
    created_at     BIGINT NOT NULL,
    submitted_at   BIGINT,
    approved_at    BIGINT,
    published_at   BIGINT,
    fanout_done_at BIGINT,
    cancelled_at   BIGINT
);
CREATE INDEX notices_by_state ON notices (state, id);

-- One per (notice, subscriber, channel): the unique key is what makes a double fan-out harmless.
-- contact_id is cleared by erasure; the row then says only that someone was sent something.
CREATE TABLE deliveries (
    id            BIGSERIAL PRIMARY KEY,
    notice_id     BIGINT NOT NULL REFERENCES notices (id),
    subscriber_id BIGINT NOT NULL,
    contact_id    BIGINT,
    channel       TEXT NOT NULL,
    language      TEXT NOT NULL,
    -- queued → sending → sent → delivered | failed; expired and cancelled are final too.
    status        TEXT NOT NULL,
    -- Quiet hours: not before this time (ms).
    not_before    BIGINT,
    -- A worker holds a `sending` row until then; afterwards another may take it up.
    lease_until   BIGINT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    provider_id   TEXT,
    error         TEXT,
    updated_at    BIGINT NOT NULL,
    UNIQUE (notice_id, subscriber_id, channel)
);
CREATE INDEX deliveries_by_provider_id ON deliveries (provider_id) WHERE provider_id IS NOT NULL;

-- Every try of a delivery and every receipt, in order: the trace from click to provider.
CREATE TABLE delivery_events (
    id          BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL,
    attempt     INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    worker_id   TEXT,
    at          BIGINT NOT NULL
);
CREATE INDEX delivery_events_by_delivery ON delivery_events (delivery_id);

-- Pre-approved notice templates: the break-glass path when no approver can be reached.
CREATE TABLE notice_templates (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    author_id   BIGINT NOT NULL REFERENCES officials (id),
    approver_id BIGINT REFERENCES officials (id),
    created_at  BIGINT NOT NULL,
    approved_at BIGINT
);

-- Idempotency-Key: the first answer to a key is kept and given again to every repeat.
-- `status` is NULL while the first request is still being answered.
CREATE TABLE idempotency_keys (
    official_id BIGINT NOT NULL,
    key         TEXT NOT NULL,
    route       TEXT NOT NULL,
    status      INTEGER,
    body        TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (official_id, key, route)
);

-- Residents who receive Exercise and Test notices (the public never does).
ALTER TABLE subscribers ADD COLUMN tester BOOLEAN NOT NULL DEFAULT FALSE;
