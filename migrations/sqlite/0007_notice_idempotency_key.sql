-- A notice written with an Idempotency-Key keeps the key, so that a repeat finds the notice even
-- when the first answer was lost after the insert committed (a connection cut between the two:
-- the fault suite's scenario 4). Keys without a notice stay in idempotency_keys.
ALTER TABLE notices ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX notices_author_idempotency_key ON notices (author_id, idempotency_key);
