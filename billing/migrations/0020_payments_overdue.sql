-- Payments, credit carried between a subscriber's bills, and the instant
-- overdue state is evaluated at. Money is bigint cents; nothing here is ever
-- updated or deleted (a ledger), only bills.paid_cents and bills.status move.

CREATE TABLE payments (
  id                    uuid        PRIMARY KEY,
  bill_id               uuid        NOT NULL REFERENCES bills (id),
  subscriber_id         uuid        NOT NULL REFERENCES subscribers (id),
  amount_cents          bigint      NOT NULL CHECK (amount_cents > 0),
  -- Chosen by the payer; the same key twice records one payment.
  idempotency_key       text        NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
  -- The bill as this payment left it (after any credit carried forward), so a
  -- replay of the key answers exactly what the first request answered.
  bill_paid_cents_after bigint      NOT NULL,
  bill_status_after     text        NOT NULL CHECK (bill_status_after IN ('open', 'paid', 'overdue')),
  created_at            timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT payments_idempotency_key UNIQUE (idempotency_key)
);
CREATE INDEX payments_bill ON payments (bill_id, created_at);

-- An overpaid bill's excess moves to the same subscriber's later bills that
-- still owe, oldest first. Each move is a row here, so for every bill
-- paid_cents = its payments + credit moved in - credit moved out.
CREATE TABLE credit_transfers (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscriber_id uuid        NOT NULL REFERENCES subscribers (id),
  from_bill_id  uuid        NOT NULL REFERENCES bills (id),
  to_bill_id    uuid        NOT NULL REFERENCES bills (id),
  amount_cents  bigint      NOT NULL CHECK (amount_cents > 0),
  -- The payment whose excess moved; NULL when an evaluation moved credit to a newly issued bill.
  payment_id    uuid        REFERENCES payments (id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (from_bill_id <> to_bill_id)
);
CREATE INDEX credit_transfers_from ON credit_transfers (from_bill_id);
CREATE INDEX credit_transfers_to ON credit_transfers (to_bill_id);

CREATE TRIGGER payments_immutable BEFORE UPDATE OR DELETE ON payments
  FOR EACH ROW EXECUTE FUNCTION bills_refuse_change();
CREATE TRIGGER payments_no_truncate BEFORE TRUNCATE ON payments
  FOR EACH STATEMENT EXECUTE FUNCTION bills_refuse_change();
CREATE TRIGGER credit_transfers_immutable BEFORE UPDATE OR DELETE ON credit_transfers
  FOR EACH ROW EXECUTE FUNCTION bills_refuse_change();
CREATE TRIGGER credit_transfers_no_truncate BEFORE TRUNCATE ON credit_transfers
  FOR EACH STATEMENT EXECUTE FUNCTION bills_refuse_change();

-- The latest instant overdue state was evaluated at. It only moves forward:
-- a billing run as of a future instant (a replay, a demo) blocks what is due
-- by then, and a later sweep at the wall clock must not unblock it again.
CREATE TABLE overdue_clock (
  singleton boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
  -- NULL until the first evaluation.
  as_of     timestamptz
);
INSERT INTO overdue_clock DEFAULT VALUES;

-- Pay-per-call (900) charges on a bill: the premium line, plus any
-- `premiumCents` a line declares for the 900 share of a mixed line (late
-- usage). 47 CFR 64.1507: unpaid 900 charges never block service.
CREATE FUNCTION bill_premium_cents(lines jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT COALESCE(sum(CASE WHEN l->>'kind' = 'premium' THEN (l->>'amountCents')::bigint
                           ELSE COALESCE((l->>'premiumCents')::bigint, 0) END), 0)::bigint
    FROM jsonb_array_elements(lines) AS l
$$;

-- Bills not yet paid, by due time: the overdue sweep reads only these (a
-- month of bills or so), never the whole history.
CREATE INDEX bills_unsettled_due ON bills (due_at) WHERE status <> 'paid';
-- Overpaid bills (credit waiting for a later bill): few, so a tiny index.
CREATE INDEX bills_credit ON bills (subscriber_id) WHERE paid_cents > total_cents;
