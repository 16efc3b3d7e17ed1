-- Each answer stored on PostgreSQL wrote an entry into all five of survey_responses' indexes.
-- Three of those entries were for NULLs that no query reads: an answer by invitation has no
-- browser token and no address digest, an open answer has no invitation. The unique indexes
-- and the address index now hold only the rows that have the value (the same rule as before:
-- NULLs never conflicted), so an answer by invitation writes three index entries, an open one
-- four. A changed answer touches no index when its new version fits on its page (a heap-only
-- tuple; its indexed columns do not change): 94% of a million changes did on full pages, whose
-- dead versions are pruned to make room, and 99% with a fifth of each page left free (pgbench,
-- batches of 12 upserts, session 17). docs/performance.md, session 17, has both measurements.
-- The upserts name the same predicates (ON CONFLICT … WHERE …) to use these unique indexes.
ALTER TABLE survey_responses DROP CONSTRAINT IF EXISTS survey_responses_invitation_id_key;
ALTER TABLE survey_responses DROP CONSTRAINT IF EXISTS survey_responses_survey_id_browser_hash_key;
CREATE UNIQUE INDEX survey_responses_one_per_invitation ON survey_responses (invitation_id) WHERE invitation_id IS NOT NULL;
CREATE UNIQUE INDEX survey_responses_one_per_browser ON survey_responses (survey_id, browser_hash) WHERE browser_hash IS NOT NULL;
DROP INDEX IF EXISTS survey_responses_by_address;
CREATE INDEX survey_responses_by_address ON survey_responses (survey_id, ip_digest) WHERE ip_digest IS NOT NULL;
-- Applies to pages written from now on; a table that already holds answers keeps its full
-- pages until rewritten (VACUUM FULL), which an upgrade does not do for you.
ALTER TABLE survey_responses SET (fillfactor = 80);
