-- The foreign keys from survey_responses to surveys and survey_invitations cost two trigger
-- calls, two index probes and two row locks per inserted answer, and the lock on the one survey
-- row, taken by every answer commit at once, made a MultiXact each time: on a burst of answers
-- they were a third of PostgreSQL's time in the upsert (`hejnal bench survey`, perf; see
-- docs/performance.md). The upsert itself joins each answer to its survey and invitation in
-- the same statement, under the survey's lock, and neither table ever has a row deleted.
ALTER TABLE survey_responses DROP CONSTRAINT IF EXISTS survey_responses_survey_id_fkey;
ALTER TABLE survey_responses DROP CONSTRAINT IF EXISTS survey_responses_invitation_id_fkey;
