-- Residents. A subscriber is a person's choices; contacts are the addresses that reach them,
-- each verified before use. Personal data lives only in `contacts`, so erasure is a delete there.
CREATE TABLE subscribers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The random half of the preferences link; the link's other half is an HMAC of it.
    public_id  TEXT NOT NULL UNIQUE,
    language   TEXT NOT NULL CHECK (language IN ('pl', 'en', 'uk')),
    quiet_from TEXT,
    quiet_to   TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- Set by erasure; the row stays as a tombstone so the link can answer 410.
    erased_at  INTEGER
);

CREATE TABLE subscriber_districts (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    district      TEXT NOT NULL REFERENCES districts (slug),
    PRIMARY KEY (subscriber_id, district)
);
CREATE INDEX subscriber_districts_by_district ON subscriber_districts (district, subscriber_id);

CREATE TABLE subscriber_interests (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    interest      TEXT NOT NULL REFERENCES interests (slug),
    PRIMARY KEY (subscriber_id, interest)
);
CREATE INDEX subscriber_interests_by_interest ON subscriber_interests (interest, subscriber_id);

-- One row per address: the same email or phone in two sign-ups is one contact.
CREATE TABLE contacts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id     INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    channel           TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    address           TEXT NOT NULL,
    push_p256dh       TEXT,
    push_auth         TEXT,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'verified', 'unsubscribed', 'gone')),
    verify_hash       TEXT,
    verify_expires_at INTEGER,
    verify_attempts   INTEGER NOT NULL DEFAULT 0,
    verified_at       INTEGER,
    created_at        INTEGER NOT NULL,
    UNIQUE (channel, address)
);
CREATE INDEX contacts_by_subscriber ON contacts (subscriber_id);
CREATE INDEX contacts_pending ON contacts (status, created_at);
CREATE UNIQUE INDEX contacts_by_verify_hash ON contacts (verify_hash);

-- Consent given and withdrawn, kept after the contact is gone (pseudonymous: no address).
CREATE TABLE consents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id   INTEGER NOT NULL,
    channel         TEXT NOT NULL,
    consent_version TEXT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('granted', 'withdrawn')),
    method          TEXT NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX consents_by_subscriber ON consents (subscriber_id);

-- Every verification message sent, for the per-contact and daily limits. The address is a
-- SHA-256 digest: the limits need equality, not the address.
CREATE TABLE verification_sends (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    channel      TEXT NOT NULL,
    address_hash TEXT NOT NULL,
    sent_at      INTEGER NOT NULL
);
CREATE INDEX verification_sends_by_address ON verification_sends (address_hash, sent_at);
CREATE INDEX verification_sends_by_time ON verification_sends (channel, sent_at);

-- Server-side secrets generated on first start (the preferences-link key), shared by every
-- process through the database when HEJNAL_SECRET_KEY is not set.
CREATE TABLE app_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- What officials did through the API: who, what, to what, and how many people it reached.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    official_id INTEGER REFERENCES officials (id),
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    reached     INTEGER NOT NULL DEFAULT 0,
    at          INTEGER NOT NULL
);
