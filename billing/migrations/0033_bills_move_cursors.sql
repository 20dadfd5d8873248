-- A subscriber's billing cursor moves with its bills, in the statement that
-- inserts them.
--
-- Before, the run moved the cursors itself, in each writer transaction before
-- its COPY of bills: one UPDATE from arrays of subscriber ids and
-- destinations, sent as text and parsed, then joined with the cursors; and
-- the COPY's statement trigger (0031) joined the same bills with subscribers
-- once more to check that each one's subscriber exists. Now a bill names the
-- end of the period after it (next_period_end: where its subscriber's cursor
-- goes), and one statement trigger moves the cursors from the statement's own
-- new rows. That same join is the subscriber check: every subscriber has a
-- cursor from the statement that creates it (0032), a cursor's subscriber
-- exists (its foreign key), and neither is ever deleted. Measured on the
-- write path of 300,000 bills (three chunks, two writer transactions each):
-- 9.7-10.3 core-s of PostgreSQL against 11.9-12.4 before.
--
-- It also makes a guarantee of the run's a guarantee of the database: however
-- a bill is inserted, its subscriber's cursor moves past it in the same
-- statement, so the cursor never disagrees with the bills.

-- The end of the period after the bill's: a period's end is a function of
-- the subscriber's anniversary day and zone (billing/domain/cycles.ts), which
-- the run works out; the cursor stores it so that the due query is a
-- comparison. NULL on bills written before this migration (their cursors
-- were moved by the run); required of every bill inserted after it (checked
-- by the trigger below, so that paying an older bill, an update, is not
-- refused for it).
ALTER TABLE bills ADD COLUMN next_period_end timestamptz;

DROP TRIGGER bills_subscriber_exists ON bills;
DROP FUNCTION bills_check_subscribers();

CREATE FUNCTION bills_move_cursors() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  named bigint;
  moved bigint;
  unplaced bigint;
  missing uuid;
BEGIN
  -- EXECUTE plans the query for this statement's rows (a cached plan made for
  -- one bill would be kept for 150,000). Each subscriber's cursor goes past
  -- its latest new bill, and only forward: a cursor already past it (a stale
  -- writer's bill) is left alone.
  EXECUTE $q$
    WITH latest AS (
      SELECT DISTINCT ON (subscriber_id) subscriber_id, period_index, period_end, next_period_end, watermark
        FROM new_bills ORDER BY subscriber_id, period_index DESC
    ), moved AS (
      -- (A bill without a valid next period's end is refused below, not moved here.)
      UPDATE billing_cursors c
         SET next_period_index = l.period_index + 1, next_period_end = l.next_period_end, last_watermark = l.watermark
        FROM latest l
       WHERE c.subscriber_id = l.subscriber_id AND c.next_period_index <= l.period_index + 1 AND l.next_period_end > l.period_end
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM latest), (SELECT count(*) FROM moved),
           (SELECT count(*) FROM new_bills WHERE next_period_end IS NULL OR next_period_end <= period_end)$q$
    INTO named, moved, unplaced;
  IF unplaced > 0 THEN
    RAISE EXCEPTION 'insert on table "bills" refused: next_period_end is required and must be after period_end (the end of the period after the bill''s, where its subscriber''s billing cursor goes)'
      USING ERRCODE = 'check_violation', TABLE = 'bills', COLUMN = 'next_period_end', CONSTRAINT = 'bills_next_period_end';
  END IF;
  IF moved < named THEN
    -- Some cursors were not moved: past the bill already (left alone), or
    -- missing, which means the subscriber does not exist. No LIMIT: with one,
    -- the planner expects a miss early and probes per bill; without, it
    -- hashes (INTO keeps the first row, and execution stops there).
    EXECUTE 'SELECT n.subscriber_id FROM new_bills n
              WHERE NOT EXISTS (SELECT 1 FROM billing_cursors c WHERE c.subscriber_id = n.subscriber_id)'
      INTO missing;
    IF missing IS NOT NULL THEN
      RAISE EXCEPTION 'insert on table "bills" refused: subscriber % does not exist', missing
        USING ERRCODE = 'foreign_key_violation', TABLE = 'bills', COLUMN = 'subscriber_id',
              CONSTRAINT = 'bills_subscriber_exists';
    END IF;
  END IF;
  RETURN NULL;
END $$;

-- Why this is as strong as 0031's check (and so as the foreign key): a bill
-- whose subscriber has no cursor visible to the statement is refused, and a
-- cursor is visible exactly when its subscriber is (both are created by the
-- same statement, and neither is deleted nor changes its id: 0031, 0032). A
-- subscriber inserted but not yet committed is not seen, and the bill is
-- refused, as the key refused it. The UPDATE locks each moved cursor until
-- the bills commit.
CREATE TRIGGER bills_move_cursors AFTER INSERT ON bills
  REFERENCING NEW TABLE AS new_bills
  FOR EACH STATEMENT EXECUTE FUNCTION bills_move_cursors();
