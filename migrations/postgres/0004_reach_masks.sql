-- Bitmasks that let the audience estimate count a million residents in one narrow scan
-- instead of joining four tables. Bit n of district_mask is the district at position n + 1;
-- likewise for interests; verified_mask has 1 = email, 2 = sms, 4 = push verified. They are
-- derived data, rewritten in the same transaction as the rows they summarise.
ALTER TABLE subscribers ADD COLUMN district_mask BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN interest_mask BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN verified_mask BIGINT NOT NULL DEFAULT 0;

-- The estimate reads only these columns of live residents: an index-only scan.
CREATE INDEX subscribers_reach ON subscribers (district_mask, verified_mask, interest_mask, language) WHERE erased_at IS NULL;
