-- The billing run renders each bill's COPY line in the engine (issue 3's
-- catch-up): the staged work list carries what a bill row holds beyond its
-- usage, and which of the run's two writer transactions takes it.
ALTER TABLE {db}.billing_items
    ADD COLUMN IF NOT EXISTS subscriber_id      String,
    ADD COLUMN IF NOT EXISTS period_index       UInt32,
    ADD COLUMN IF NOT EXISTS period_start_local String,
    ADD COLUMN IF NOT EXISTS period_end_local   String,
    ADD COLUMN IF NOT EXISTS writer             UInt8;

-- Late-usage lines, computed by the run for the few periods with late calls
-- and joined into their bills' rows. One partition per run, dropped with the
-- run's billing_items partition.
CREATE TABLE IF NOT EXISTS {db}.billing_item_late
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
