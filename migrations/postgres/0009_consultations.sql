-- Consultations: residents' comments, moderated, and the report officials publish when the
-- period has ended. The document itself is part of the survey's `spec`.

-- A comment is shown only once approved. The moderation is kept on the row: who decided,
-- when, what and why (the audit log has it too). The author is a browser (digest of its
-- cookie token) and an optional name the resident chose to show; never a contact.
CREATE TABLE consultation_comments (
    id           BIGSERIAL PRIMARY KEY,
    survey_id    BIGINT NOT NULL REFERENCES surveys (id),
    name         TEXT,
    body         TEXT NOT NULL,
    language     TEXT NOT NULL,
    browser_hash TEXT,
    ip_digest    TEXT,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    created_at   BIGINT NOT NULL,
    moderator_id BIGINT REFERENCES officials (id),
    moderated_at BIGINT,
    reason       TEXT,
    CHECK ((state = 'pending') = (moderator_id IS NULL))
);
CREATE INDEX consultation_comments_by_state ON consultation_comments (survey_id, state, id);

-- One report per consultation: the officials' summary (JSON, per language) and the results
-- as they stood when it was published (JSON), so the page never changes afterwards.
CREATE TABLE consultation_reports (
    survey_id    BIGINT PRIMARY KEY REFERENCES surveys (id),
    summary      TEXT NOT NULL,
    results      TEXT NOT NULL,
    comments     BIGINT NOT NULL,
    author_id    BIGINT NOT NULL REFERENCES officials (id),
    published_at BIGINT NOT NULL
);
