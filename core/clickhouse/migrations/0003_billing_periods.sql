-- The billing run's work list, staged in ClickHouse (it replaces
-- billing_items): one row per due subscriber period, holding what the rating
-- query joins with the calls and what the bill's row holds beyond its usage,
-- so that the engine renders each bill whole. Instants are epoch milliseconds
-- (the ALIAS columns read them as DateTime64): a catch-up stages 300,000 rows,
-- and text instants made the rows ~30% longer and slower to parse. One
-- partition per chunk of a run, dropped when the chunk is rated.
CREATE TABLE IF NOT EXISTS {db}.billing_periods
(
    run_id             String,
    item_no            UInt32,
    source_number      String,
    plan_no            UInt16,
    period_start_ms    Int64,
    period_end_ms      Int64,
    -- The previous bill's watermark: calls of earlier periods ingested after
    -- it (and up to this run's watermark) are this bill's late usage.
    -- 0 for a bill with no late usage to look for.
    late_after_ms      Int64,
    -- The start of the subscriber's first period (read with late usage only).
    first_start_ms     Int64,
    subscriber_id      String,
    period_index       UInt32,
    period_start_local String,
    period_end_local   String,
    -- Which of the run's two writer transactions stores the bill.
    writer             UInt8,
    period_start       DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(period_start_ms, 'UTC'),
    period_end         DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(period_end_ms, 'UTC'),
    late_after         DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(late_after_ms, 'UTC'),
    first_start        DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(first_start_ms, 'UTC')
)
ENGINE = MergeTree
PARTITION BY run_id
ORDER BY (source_number, period_start_ms);

-- Late-usage lines, computed by the run for the few periods with late calls
-- and joined into their bills' rows; dropped with the chunk's partition above.
CREATE TABLE IF NOT EXISTS {db}.billing_period_late
(
    run_id      String,
    item_no     UInt32,
    late_cents  Int64,
    -- The late lines as JSON, each preceded by a comma, in COPY text form.
    late_lines  String
)
ENGINE = MergeTree
PARTITION BY run_id
ORDER BY item_no;

DROP TABLE IF EXISTS {db}.billing_items;
