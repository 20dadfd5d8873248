-- A bill's lines live inside the bill row (jsonb array of
-- {kind, description, calls, billableSeconds, amountCents[, usagePeriodStart, usagePeriodEnd]}).
-- Why: a month's billing writes one row per bill instead of ~6; with 300,000
-- subscribers that is 300,000 COPY rows rather than 2 million, and the bill
-- and its lines are written, and protected by the immutability trigger, as one.
ALTER TABLE bills ADD COLUMN lines jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(lines) = 'array');
