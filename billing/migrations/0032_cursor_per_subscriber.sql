-- Every subscriber has a billing cursor from the moment it exists. A new
-- subscriber's cursor is "not placed yet": next period 0, ending at
-- -infinity, so the next run takes it as due, computes its periods (in
-- TypeScript, billing/domain/cycles.ts) and either bills them or places the
-- cursor at the end of its first period.
--
-- Before, the due query read the cursors whose next period had ended plus
-- every subscriber without a cursor, an anti-join over the whole subscriber
-- table on every hourly run (~150 ms of a day's cohort's ~200 ms at 300,000
-- subscribers). Now it reads the narrow cursor table alone and joins only the
-- due rows to their subscribers.
--
-- Cursors are opened once per statement (a bulk import of subscribers is one
-- COPY), from the statement's new rows.
CREATE FUNCTION subscribers_open_cursors() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO billing_cursors (subscriber_id, next_period_index, next_period_end)
  SELECT id, 0, '-infinity' FROM new_subscribers
  ON CONFLICT (subscriber_id) DO NOTHING;
  RETURN NULL;
END $$;

CREATE TRIGGER subscribers_open_cursors AFTER INSERT ON subscribers
  REFERENCING NEW TABLE AS new_subscribers
  FOR EACH STATEMENT EXECUTE FUNCTION subscribers_open_cursors();

-- Subscribers created before this migration and never seen by a run.
INSERT INTO billing_cursors (subscriber_id, next_period_index, next_period_end)
SELECT s.id, 0, '-infinity' FROM subscribers s
 WHERE NOT EXISTS (SELECT 1 FROM billing_cursors c WHERE c.subscriber_id = s.id);

-- A subscriber without a cursor would never be billed, so a cursor is never
-- deleted (deleting subscribers is refused too, 0031); to re-examine a
-- subscriber's periods, rewind its cursor instead (the unique keys on bills
-- keep a rewound run from billing any period twice).
CREATE FUNCTION billing_cursors_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on billing_cursors refused: a subscriber without a billing cursor would never be billed; rewind the cursor instead', TG_OP
    USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER billing_cursors_no_delete BEFORE DELETE ON billing_cursors
  FOR EACH ROW EXECUTE FUNCTION billing_cursors_refuse_delete();
CREATE TRIGGER billing_cursors_no_truncate BEFORE TRUNCATE ON billing_cursors
  FOR EACH STATEMENT EXECUTE FUNCTION billing_cursors_refuse_delete();
