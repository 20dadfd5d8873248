-- Cursors kept per group of subscribers who share every period.
--
-- A subscriber's periods are a function of its subscription date and zone
-- alone (billing/domain/cycles.ts), so the subscribers who share both share
-- every period, and a run bills all of them up to the same place with the
-- same watermark. Until now each one's cursor moved once per bill (0033's
-- trigger): ~3 core-s of PostgreSQL per 300,000 bills, the row updates
-- themselves, a third of what PostgreSQL spent beyond a bare COPY of the
-- bills. Now a run moves one row per group, once it has written every bill
-- of the group's members.
--
-- A subscriber *follows* its group (billing_cursors.follows), and its own
-- cursor's fields are then unused, or has a cursor of its own, moved with
-- its bills as before (0033). A subscriber leaves its group, its cursor
-- pinned where the group's was, whenever its position may differ:
-- * created while its group has billed already, or while a run is in
--   progress (the run read its due subscribers before this one existed);
-- * closed, or its subscription date or zone changed;
-- * skipped by a run (e.g. an unknown plan), before its group moves on;
-- * its bills written by a run that did not finish: the next run first pins
--   those subscribers from their bills (repairUnsettled), whose groups had
--   not moved;
-- * a bill inserted for it by anything but a run (the trigger below);
-- * a bill of it found already there by a run, with another watermark.
-- It follows its group again once a run leaves both at the same period with
-- the same watermark (settleRun), unless closed.
-- The unique key on bills stays what makes a repeated period create nothing;
-- the cursors only say where to look.

-- No run works while this migrates (a run takes this key exclusively,
-- billing-runs.ts BILLING_LOCK_KEY); one in progress finishes first.
SELECT pg_advisory_xact_lock(1651076204); -- 0x6269_6c6c, 'bill'

CREATE TABLE billing_groups (
  id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_date date        NOT NULL,
  time_zone         text        NOT NULL,
  next_period_index integer     NOT NULL DEFAULT 0 CHECK (next_period_index >= 0),
  -- '-infinity' until a run has placed the group.
  next_period_end   timestamptz NOT NULL DEFAULT '-infinity',
  last_watermark    timestamptz,
  CONSTRAINT billing_groups_anchor UNIQUE (subscription_date, time_zone)
);

CREATE FUNCTION billing_groups_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on billing_groups refused: its subscribers would never be billed', TG_OP
    USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER billing_groups_no_delete BEFORE DELETE ON billing_groups
  FOR EACH ROW EXECUTE FUNCTION billing_groups_refuse_delete();
CREATE TRIGGER billing_groups_no_truncate BEFORE TRUNCATE ON billing_groups
  FOR EACH STATEMENT EXECUTE FUNCTION billing_groups_refuse_delete();

INSERT INTO billing_groups (subscription_date, time_zone)
SELECT DISTINCT subscription_date, time_zone FROM subscribers;

-- Existing cursors were moved bill by bill and are right as they are. Each
-- group takes the position most of its (not closed) members share, and
-- those members follow it; the others keep their cursors as their own.
ALTER TABLE billing_cursors ADD COLUMN group_id bigint, ADD COLUMN follows boolean NOT NULL DEFAULT false;
UPDATE billing_cursors c SET group_id = g.id
  FROM subscribers s JOIN billing_groups g ON g.subscription_date = s.subscription_date AND g.time_zone = s.time_zone
 WHERE s.id = c.subscriber_id;
-- (No foreign key: its per-row check would lock the group's row once per
-- subscriber created; groups are never deleted, above.)
ALTER TABLE billing_cursors ALTER COLUMN group_id SET NOT NULL;
CREATE INDEX billing_cursors_group ON billing_cursors (group_id);

-- Following subscribers pinned where their group stands: cursors of their
-- own from then on. For one closed or given another date or zone (the
-- trigger below), and for those a run skipped, before their group moves on
-- (billing-runs.ts settleRun).
CREATE FUNCTION billing_cursors_pin(subscriber_ids uuid[]) RETURNS void LANGUAGE sql AS $$
  UPDATE billing_cursors c
     SET follows = false, next_period_index = g.next_period_index, next_period_end = g.next_period_end, last_watermark = g.last_watermark
    FROM billing_groups g
   WHERE c.subscriber_id = ANY(subscriber_ids) AND c.follows AND g.id = c.group_id
$$;

-- Cursors of their own that stand where their group does (the same period,
-- its end and watermark), of subscribers not closed and still of the
-- group's date and zone, follow the group: the same position either way.
-- Once here for a database in use, and by each run for the groups it moved
-- (billing-runs.ts settleRun). EXECUTE plans it for the groups given (as a
-- SQL function, planned once for any groups, a catch-up's settling took
-- 29-57 ms against 9-14).
CREATE FUNCTION billing_groups_rejoin(group_ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE $q$
    UPDATE billing_cursors c SET follows = true
      FROM billing_groups g, subscribers s
     WHERE g.id = ANY($1) AND c.group_id = g.id AND NOT c.follows
       AND c.next_period_index = g.next_period_index AND c.next_period_end = g.next_period_end
       AND c.last_watermark IS NOT DISTINCT FROM g.last_watermark
       AND s.id = c.subscriber_id AND s.status <> 'closed'
       AND s.subscription_date = g.subscription_date AND s.time_zone = g.time_zone$q$
  USING group_ids;
END $$;

UPDATE billing_groups g
   SET next_period_index = m.next_period_index, next_period_end = m.next_period_end, last_watermark = m.last_watermark
  FROM (SELECT DISTINCT ON (c.group_id) c.group_id, c.next_period_index, c.next_period_end, c.last_watermark
          FROM billing_cursors c JOIN subscribers s ON s.id = c.subscriber_id
         WHERE s.status <> 'closed'
         GROUP BY c.group_id, c.next_period_index, c.next_period_end, c.last_watermark
         ORDER BY c.group_id, count(*) DESC, c.next_period_index DESC, c.next_period_end DESC, c.last_watermark DESC NULLS LAST) m
 WHERE g.id = m.group_id;
SELECT billing_groups_rejoin(array(SELECT id FROM billing_groups));
-- The cursors of their own by group: a run, once it has moved a group, lets
-- those now where the group is (same period, same watermark) follow it again.
-- Moving such a cursor changes neither column, so its updates stay HOT.
CREATE INDEX billing_cursors_own ON billing_cursors (group_id) WHERE NOT follows;

-- Where each subscriber stands: its group's cursor or its own.
CREATE VIEW billing_positions AS
SELECT c.subscriber_id, c.follows, c.group_id,
       CASE WHEN c.follows THEN g.next_period_index ELSE c.next_period_index END AS next_period_index,
       CASE WHEN c.follows THEN g.next_period_end ELSE c.next_period_end END AS next_period_end,
       CASE WHEN c.follows THEN g.last_watermark ELSE c.last_watermark END AS last_watermark
  FROM billing_cursors c JOIN billing_groups g ON g.id = c.group_id;

-- A run is settled once its groups have moved (in one transaction with the
-- last of its cursors). A run that never settled (killed, or failed) may
-- have written bills of following subscribers whose groups did not move:
-- the next run pins those first. Runs before this file moved every cursor
-- with its bills.
ALTER TABLE billing_runs ADD COLUMN settled boolean NOT NULL DEFAULT true;
ALTER TABLE billing_runs ALTER COLUMN settled SET DEFAULT false;
CREATE INDEX billing_runs_unsettled ON billing_runs (started_at) WHERE NOT settled;

-- New subscribers: their group (created if new) and their cursor. One
-- follows its group when nothing of the group is billed yet and no run is in
-- progress; the shared lock, held until this commits, keeps a run from
-- starting (it takes the same key exclusively, billing-runs.ts
-- BILLING_LOCK_KEY) before its due subscribers can see this one. Otherwise
-- its own cursor starts at period 0, as before.
CREATE OR REPLACE FUNCTION subscribers_open_cursors() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  no_run boolean;
BEGIN
  INSERT INTO billing_groups (subscription_date, time_zone)
  SELECT DISTINCT subscription_date, time_zone FROM new_subscribers
  ON CONFLICT (subscription_date, time_zone) DO NOTHING;
  no_run := pg_try_advisory_xact_lock_shared(1651076204); -- 0x6269_6c6c, 'bill'
  INSERT INTO billing_cursors (subscriber_id, next_period_index, next_period_end, group_id, follows)
  SELECT n.id, 0, '-infinity', g.id, no_run AND g.next_period_index = 0 AND n.status <> 'closed'
    FROM new_subscribers n JOIN billing_groups g ON g.subscription_date = n.subscription_date AND g.time_zone = n.time_zone
  ON CONFLICT (subscriber_id) DO NOTHING;
  RETURN NULL;
END $$;

-- A subscriber closed, or given another subscription date or zone, leaves
-- its group: pinned where the group stood, and placed in its new group.
CREATE FUNCTION subscribers_pin_cursor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM billing_cursors_pin(ARRAY[NEW.id]);
  IF NEW.subscription_date <> OLD.subscription_date OR NEW.time_zone <> OLD.time_zone THEN
    INSERT INTO billing_groups (subscription_date, time_zone) VALUES (NEW.subscription_date, NEW.time_zone)
    ON CONFLICT (subscription_date, time_zone) DO NOTHING;
    UPDATE billing_cursors c SET group_id = g.id
      FROM billing_groups g
     WHERE c.subscriber_id = NEW.id AND g.subscription_date = NEW.subscription_date AND g.time_zone = NEW.time_zone;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER subscribers_pin_cursor AFTER UPDATE OF status, subscription_date, time_zone ON subscribers
  FOR EACH ROW
  WHEN ((NEW.status = 'closed' AND OLD.status <> 'closed')
        OR NEW.subscription_date <> OLD.subscription_date OR NEW.time_zone <> OLD.time_zone)
  EXECUTE FUNCTION subscribers_pin_cursor();

-- 0033's trigger, for subscribers with cursors of their own as before. A
-- run's writers say so (SET LOCAL phonebill.billing_run = 'on'): their bills
-- of following subscribers leave the cursors alone, the run moving the
-- groups once every bill is in. Any other insert (no run: a hand-written
-- bill, a tool) pins a following subscriber past its bill, so that however
-- a bill is inserted outside a run, its subscriber's position moves past it.
--
-- One pass joins the statement's bills with their cursors and counts what
-- the checks need; the cursors are updated only when some are to move. 0033
-- joined them twice (the update, then the missing-subscriber check, each
-- hashing every cursor): measured on 50,000 bills against 300,000 cursors,
-- 228 + 174 ms; the one pass, 155-206 ms, and no update of following ones.
CREATE OR REPLACE FUNCTION bills_move_cursors() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  missing bigint;
  unplaced bigint;
  to_move bigint;
  missing_id uuid;
  by_run boolean := coalesce(current_setting('phonebill.billing_run', true), '') = 'on';
BEGIN
  EXECUTE $q$
    SELECT count(*) FILTER (WHERE c.subscriber_id IS NULL),
           count(*) FILTER (WHERE n.next_period_end IS NULL OR n.next_period_end <= n.period_end),
           count(*) FILTER (WHERE NOT c.follows OR NOT $1)
      FROM new_bills n LEFT JOIN billing_cursors c ON c.subscriber_id = n.subscriber_id$q$
    INTO missing, unplaced, to_move USING by_run;
  IF unplaced > 0 THEN
    RAISE EXCEPTION 'insert on table "bills" refused: next_period_end is required and must be after period_end (the end of the period after the bill''s, where its subscriber''s billing cursor goes)'
      USING ERRCODE = 'check_violation', TABLE = 'bills', COLUMN = 'next_period_end', CONSTRAINT = 'bills_next_period_end';
  END IF;
  IF missing > 0 THEN
    -- No cursor: the subscriber does not exist (every subscriber has one
    -- from the statement that creates it, 0032, and neither is deleted).
    EXECUTE 'SELECT n.subscriber_id FROM new_bills n
              WHERE NOT EXISTS (SELECT 1 FROM billing_cursors c WHERE c.subscriber_id = n.subscriber_id)'
      INTO missing_id;
    RAISE EXCEPTION 'insert on table "bills" refused: subscriber % does not exist', missing_id
      USING ERRCODE = 'foreign_key_violation', TABLE = 'bills', COLUMN = 'subscriber_id',
            CONSTRAINT = 'bills_subscriber_exists';
  END IF;
  IF to_move > 0 THEN
    -- (EXECUTE plans the query for this statement's rows.) Each such
    -- subscriber's cursor goes past its latest new bill, and only forward: a
    -- cursor already past it (a stale writer's bill) is left alone; so is a
    -- following subscriber's whose group is past it.
    EXECUTE $q$
      WITH latest AS (
        SELECT DISTINCT ON (subscriber_id) subscriber_id, period_index, next_period_end, watermark
          FROM new_bills ORDER BY subscriber_id, period_index DESC
      )
      UPDATE billing_cursors c
         SET next_period_index = l.period_index + 1, next_period_end = l.next_period_end, last_watermark = l.watermark, follows = false
        FROM latest l
       WHERE c.subscriber_id = l.subscriber_id
         AND CASE WHEN c.follows
                  THEN NOT $1 AND (SELECT g.next_period_index FROM billing_groups g WHERE g.id = c.group_id) <= l.period_index + 1
                  ELSE c.next_period_index <= l.period_index + 1 END$q$
    USING by_run;
  END IF;
  RETURN NULL;
END $$;
