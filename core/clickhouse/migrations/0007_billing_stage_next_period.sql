-- A staged due period carries the end of the period after it: the bill
-- rendered for it names that end (bills.next_period_end, PostgreSQL migration
-- 0033), and the bill's insert moves its subscriber's billing cursor there.
-- The staged tables hold only a running billing run's partitions.
ALTER TABLE {db}.billing_stage_periods ADD COLUMN IF NOT EXISTS next_period_end_ms Int64 AFTER period_end_local;
