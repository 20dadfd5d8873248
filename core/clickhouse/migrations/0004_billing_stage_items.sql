-- The billing run's work list, staged in two parts (replacing billing_periods).
--
-- Subscribers due together mostly share their due periods: everyone with the
-- same subscription date, zone, plan and cursor has the same periods and the
-- same late-usage window. billing_periods repeated all of that on each of a
-- catch-up's 300,000 rows (~130 bytes each), and the engine parses an inline
-- insert on one thread, so staging cost what its bytes cost (100,000 rows:
-- ~550 ms and ~0.85 s of CPU). Now each due period is staged once per chunk
-- (billing_stage_periods) and each subscriber's item names it, with only
-- what the calls are joined on (~80 bytes: ~300 ms and ~0.3 s of CPU). The
-- subscriber's id is not staged at all: the rating query leaves its field
-- for the run, which fills it in after checking the item number.

-- One row per due (subscriber, period): what its calls are joined on (the
-- caller's number, the plan, the period's bounds and late-usage window: the
-- engine reorders a join of the calls with items joined to their periods, and
-- hashed the calls instead of the items, ~2x the CPU), its due period, and
-- which writer transaction stores its bill.
CREATE TABLE IF NOT EXISTS {db}.billing_stage_items
(
    run_id          String,
    item_no         UInt32,
    source_number   String,
    plan_no         UInt16,
    period_start_ms Int64,
    period_end_ms   Int64,
    late_after_ms   Int64,
    first_start_ms  Int64,
    period_no       UInt32,
    writer          UInt8,
    period_start    DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(period_start_ms, 'UTC'),
    period_end      DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(period_end_ms, 'UTC'),
    late_after      DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(late_after_ms, 'UTC'),
    first_start     DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(first_start_ms, 'UTC')
)
ENGINE = MergeTree
PARTITION BY run_id
ORDER BY item_no;

-- One row per due period of a group of subscribers, as the items name it:
-- what its bills show of it beyond the bounds.
CREATE TABLE IF NOT EXISTS {db}.billing_stage_periods
(
    run_id             String,
    period_no          UInt32,
    plan_no            UInt16,
    period_start_ms    Int64,
    period_index       UInt32,
    period_start_local String,
    period_end_local   String,
    period_start       DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(period_start_ms, 'UTC')
)
ENGINE = MergeTree
PARTITION BY run_id
ORDER BY period_no;

DROP TABLE IF EXISTS {db}.billing_periods;

ALTER TABLE {db}.billing_period_late COMMENT COLUMN late_lines 'The late lines as JSON text, each preceded by a comma, spliced as they are into the bill''s lines (which go into PostgreSQL by binary COPY)';
