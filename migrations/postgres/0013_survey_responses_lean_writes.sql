-- Each answer stored on PostgreSQL wrote an entry into all five of survey_responses' indexes,
-- and each changed answer wrote five more, because a full page left no room to update a row in
-- place. Three of those entries were for NULLs that no query reads: an answer by invitation has
-- no browser token and no address digest, an open answer has no invitation. The unique indexes
-- and the address index now hold only the rows that have the value (the same rule as before:
-- NULLs never conflicted), so an answer by invitation writes three index entries, an open one
-- four. A fifth of each page is left free, so a changed answer is written as a heap-only tuple
-- on its own page and touches no index at all (its indexed columns do not change).
-- `hejnal bench survey --backend postgres` before and after: docs/performance.md, session 17.
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
