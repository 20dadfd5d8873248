-- Billing's system of record: subscribers, billing runs, bills (with their lines).
-- Instants are timestamptz, local calendar dates are date, money is bigint cents.

CREATE TABLE subscribers (
  id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  -- E.164, NANP only: +1, then NPA and exchange both starting 2-9.
  phone_number      text        NOT NULL UNIQUE CHECK (phone_number ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$'),
  -- The local calendar date of subscription, in time_zone; the first period starts at its local midnight.
  subscription_date date        NOT NULL,
  -- IANA zone name, validated by the service (US or Canadian zone).
  time_zone         text        NOT NULL CHECK (time_zone <> ''),
  -- Cohorts are selected by anniversary day, so it is stored and indexed rather than recomputed.
  anniversary_day   smallint    GENERATED ALWAYS AS (EXTRACT(DAY FROM subscription_date)::smallint) STORED,
  plan              text        NOT NULL DEFAULT 'standard' CHECK (plan <> ''),
  status            text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed')),
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscribers_anniversary_day ON subscribers (anniversary_day);

-- The ledger of runBilling({ asOf }) invocations.
CREATE TABLE billing_runs (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  as_of         timestamptz NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  status        text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
  bills_created integer     NOT NULL DEFAULT 0 CHECK (bills_created >= 0),
  -- Per-stage durations in milliseconds, e.g. {"cohort": 31, "write": 120}.
  timings       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  error         text
);
CREATE INDEX billing_runs_started_at ON billing_runs (started_at DESC);

CREATE TABLE bills (
  id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  subscriber_id      uuid        NOT NULL REFERENCES subscribers (id),
  -- 0 for the period starting on the subscription date, then 1, 2, …
  period_index       integer     NOT NULL CHECK (period_index >= 0),
  period_start       timestamptz NOT NULL,
  period_end         timestamptz NOT NULL,
  period_start_local date        NOT NULL,
  period_end_local   date        NOT NULL,
  -- The run's asOf.
  issued_at          timestamptz NOT NULL,
  due_at             timestamptz NOT NULL,
  currency           text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  total_cents        bigint      NOT NULL,
  -- Changed by payments (issue 4); may exceed total_cents on an overpayment.
  paid_cents         bigint      NOT NULL DEFAULT 0 CHECK (paid_cents >= 0),
  status             text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'overdue')),
  -- The ingest watermark the usage was computed at: the bill covers calls ingested at or before it.
  watermark          timestamptz NOT NULL,
  run_id             uuid        REFERENCES billing_runs (id),
  -- The bill's lines, in order: [{kind, description, calls, billableSeconds, amountCents
  -- [, usagePeriodStart, usagePeriodEnd] (late usage only)}]. Inline rather than a table of
  -- their own: a month's billing writes one row per bill instead of ~6 (300,000 COPY rows
  -- rather than 2 million for 300,000 subscribers), and the bill and its lines are one
  -- immutable record under the triggers below.
  lines              jsonb       NOT NULL CHECK (jsonb_typeof(lines) = 'array'),
  created_at         timestamptz NOT NULL DEFAULT now(),
  CHECK (period_end > period_start),
  CHECK (period_end_local > period_start_local),
  CHECK (due_at >= issued_at),
  -- The idempotency key of billing: a rerun, a concurrent run or a resumed run cannot bill a period twice.
  -- Its index also serves "a subscriber's bills, newest first" (a backward scan), so no second index
  -- on (subscriber_id, period_start DESC) is kept: it would only slow down writing bills.
  CONSTRAINT bills_subscriber_period UNIQUE (subscriber_id, period_start),
  CONSTRAINT bills_subscriber_period_index UNIQUE (subscriber_id, period_index)
);

-- Bills are durable once created: their amounts, periods and lines never change and nothing is
-- deleted. Only payment state (status, paid_cents) may move. Enforced here so that no code path,
-- rerun or hand-written SQL can rewrite history.
CREATE FUNCTION bills_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (to_jsonb(NEW) - 'status' - 'paid_cents') IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'paid_cents') THEN
    RAISE EXCEPTION 'bill % is issued and immutable: only status and paid_cents may change', OLD.id
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION bills_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on % refused: issued bills are immutable', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER bills_immutable BEFORE UPDATE ON bills
  FOR EACH ROW EXECUTE FUNCTION bills_guard_update();
CREATE TRIGGER bills_no_delete BEFORE DELETE ON bills
  FOR EACH ROW EXECUTE FUNCTION bills_refuse_change();
CREATE TRIGGER bills_no_truncate BEFORE TRUNCATE ON bills
  FOR EACH STATEMENT EXECUTE FUNCTION bills_refuse_change();
