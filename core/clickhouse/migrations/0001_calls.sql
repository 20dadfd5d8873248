-- Every call the switch reported, once per call_id.
-- Ordered by (source_number, started_at): one subscriber's calls over one
-- billing period are a narrow range scan. Partitioned by month of start.
-- The ingest service looks call_ids up in the same narrow ranges before it
-- inserts, so a resend is never stored twice by one writer; the
-- ReplacingMergeTree engine additionally collapses a row written twice by two
-- racing writers on merge, and billing queries deduplicate with LIMIT 1 BY.
CREATE TABLE IF NOT EXISTS {db}.calls
(
    call_id        String,
    source_number  String,
    target_number  String,
    started_at     DateTime64(3, 'UTC'),
    ended_at       DateTime64(3, 'UTC'),
    duration_ms    UInt32,
    source_country LowCardinality(String),
    target_country LowCardinality(String),
    call_class     LowCardinality(String),
    ingested_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (source_number, started_at, call_id)
-- An acknowledged call must survive a crash of the machine, not only of the
-- process: each insert (one group-commit batch) is fsynced before it returns.
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;

-- Every event the ingest service refused, raw as it came, with why.
CREATE TABLE IF NOT EXISTS {db}.rejected_calls
(
    received_at    DateTime64(3, 'UTC'),
    call_id        String,
    source_number  String,
    target_number  String,
    started_at     String,
    ended_at       String,
    field          LowCardinality(String),
    reason         String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY received_at;
