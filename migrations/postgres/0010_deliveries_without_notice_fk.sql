-- The foreign key from deliveries to notices cost a trigger call, an index probe and a row lock
-- per inserted delivery: a fan-out of 1M residents spent most of its time there
-- (`hejnal bench broadcast`; see docs/performance.md). Notices are never deleted, and a
-- delivery row is only ever written by the fan-out of a notice it has just read.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_notice_id_fkey;
