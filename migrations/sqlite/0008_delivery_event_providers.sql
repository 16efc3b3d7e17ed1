-- Which provider took each attempt (SMS failover spreads one channel over several gateways),
-- and whether a failed try may still have been sent (a timeout after the request left), so that
-- the split between providers and the possible duplicates can be counted with SQL.
ALTER TABLE delivery_events ADD COLUMN provider TEXT;
ALTER TABLE delivery_events ADD COLUMN maybe_sent INTEGER NOT NULL DEFAULT 0;
