-- Writing a month of bills, continued from 0030 (measured with 300,000 bills of
-- 7 lines written by the run's COPY in two parallel transactions: 12.8 s before
-- this file). Two more costs paid per bill buy nothing a bill needs.

-- 1. bills.lines as json, not jsonb (~2.8 s of the 12.8 s). A bill is a
-- write-once document that is only ever served whole; jsonb parsed every
-- bill's lines into its binary form on the way in, and back into text on
-- every read. json keeps the text as written (still checked to be valid JSON
-- on input), and the document is still an array.
ALTER TABLE bills DROP CONSTRAINT bills_lines_check;
ALTER TABLE bills ALTER COLUMN lines TYPE json USING lines::json;
ALTER TABLE bills ADD CONSTRAINT bills_lines_check CHECK (json_typeof(lines) = 'array');

-- The guard of 0001/0021, unchanged in meaning: only status and paid_cents of
-- an issued bill may change. json has no equality operator, so rows holding
-- it cannot be compared with IS DISTINCT FROM (PostgreSQL refuses the
-- comparison even when the json fields are NULL). *= compares the rows'
-- stored images instead, column by column: for lines that is its text, byte
-- for byte (a change of whitespace or key order counts as a change, as it
-- should for an issued document); for the other columns (uuid, integers,
-- timestamps, dates, text) equal values have equal images. Still generic: a
-- column added later is guarded too, whatever its type.
CREATE OR REPLACE FUNCTION bills_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  unchanged bills;
BEGIN
  unchanged := NEW;
  unchanged.status := OLD.status;
  unchanged.paid_cents := OLD.paid_cents;
  IF NOT (unchanged *= OLD) THEN
    RAISE EXCEPTION 'bill % is issued and immutable: only status and paid_cents may change', OLD.id
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;

-- 0020's function, for json lines (overdue.ts calls it with bills.lines).
-- Reading json means parsing it, at ~14 µs for a bill of 7 lines (against
-- ~5 µs for jsonb), and the overdue evaluation calls this for every unpaid
-- bill past due. Most bills have no 900 calls: their text names no premium
-- line nor share, so they are answered without a parse. Text holding a \u
-- escape (which could spell "premium") is parsed like any other.
DROP FUNCTION bill_premium_cents(jsonb);
CREATE FUNCTION bill_premium_cents(lines json) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN strpos(lines::text, 'premium') = 0 AND strpos(lines::text, '\u') = 0 THEN 0::bigint
    ELSE (SELECT COALESCE(sum(CASE WHEN l->>'kind' = 'premium' THEN (l->>'amountCents')::bigint
                                   ELSE COALESCE((l->>'premiumCents')::bigint, 0) END), 0)::bigint
            FROM json_array_elements(lines) AS l) END
$$;

-- 2. A bill's subscriber exists: checked once per statement instead of once
-- per row (~2.3 s of the 12.8 s). The foreign key ran a lookup of its own,
-- with a KEY SHARE lock on the subscriber row, for every bill; this trigger
-- checks all of a statement's new bills (INSERT or COPY) in one anti-join.
ALTER TABLE bills DROP CONSTRAINT bills_subscriber_id_fkey;

CREATE FUNCTION bills_check_subscribers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  missing uuid;
BEGIN
  -- EXECUTE plans the query for this statement's rows: a cached plan made
  -- for one bill (an index probe per bill) would be kept for 150,000. No
  -- LIMIT: with one, the planner expects a missing subscriber early and
  -- probes the index per bill (300,000 bills: 1.0 s); without, it hashes
  -- (INTO keeps the first row, and execution stops there).
  EXECUTE 'SELECT n.subscriber_id FROM new_bills n
            WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = n.subscriber_id)'
    INTO missing;
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'insert on table "bills" refused: subscriber % does not exist', missing
      USING ERRCODE = 'foreign_key_violation', TABLE = 'bills', COLUMN = 'subscriber_id',
            CONSTRAINT = 'bills_subscriber_exists';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER bills_subscriber_exists AFTER INSERT ON bills
  REFERENCING NEW TABLE AS new_bills
  FOR EACH STATEMENT EXECUTE FUNCTION bills_check_subscribers();

-- Why this is as strong as the foreign key. The key's KEY SHARE lock only
-- kept a concurrent transaction from deleting the subscriber (or changing its
-- id) between the check and the bill's commit; the check above takes no lock,
-- so both are made impossible instead: a subscriber is closed (status
-- 'closed'), never deleted, and its id never changes. An insert is the only
-- way a bill gets a subscriber_id (bills_guard_update refuses changing it), so
-- a subscriber seen by the check exists for as long as the bill does. A
-- subscriber inserted but not yet committed is not seen, and the bill is
-- refused, as the key refused it.
CREATE FUNCTION subscribers_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on subscribers refused: subscribers are closed, never deleted, and their id never changes', TG_OP
    USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER subscribers_no_delete BEFORE DELETE ON subscribers
  FOR EACH ROW EXECUTE FUNCTION subscribers_refuse_change();
CREATE TRIGGER subscribers_no_truncate BEFORE TRUNCATE ON subscribers
  FOR EACH STATEMENT EXECUTE FUNCTION subscribers_refuse_change();
CREATE TRIGGER subscribers_id_immutable BEFORE UPDATE OF id ON subscribers
  FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION subscribers_refuse_change();
