-- A fan-out chunk reads the verified contacts of one channel over a range of residents. By
-- `contacts_by_subscriber` PostgreSQL read every contact of the range (all three channels) and
-- their rows, then hashed and sorted them: this index gives the chunk's contacts in resident
-- order, id included, so the chunk merges them with `subscribers` without reading `contacts`
-- (EXPLAIN ANALYZE of a 100,000-resident chunk at 1M: its SELECT 227 -> 117 ms; see
-- docs/performance.md). PostgreSQL only: SQLite fans out in its own plan, within target.
-- Built in the migration's transaction: at a million contacts, a few seconds without sign-ups.
CREATE INDEX contacts_verified_by_channel ON contacts (channel, subscriber_id) INCLUDE (id) WHERE status = 'verified';
