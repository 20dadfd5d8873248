-- The billing run's work list, staged in ClickHouse so that one query joins
-- every due (subscriber, period) with its calls, whatever the list's size
-- (a server takes query parameters in the URL; a list of 300,000 periods
-- does not fit there). One partition per run, dropped when the run ends.
CREATE TABLE IF NOT EXISTS {db}.billing_items
(
    run_id         String,
    item_no        UInt32,
    source_number  String,
    plan_no        UInt16,
    period_start   DateTime64(3, 'UTC'),
    period_end     DateTime64(3, 'UTC'),
    -- The previous bill's watermark: calls of earlier periods ingested after
    -- it (and up to this run's watermark) are this bill's late usage.
    -- 1970-01-01 for a subscriber's first bill, which has no late usage.
    late_after     DateTime64(3, 'UTC'),
    first_start    DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY run_id
ORDER BY (source_number, period_start);
