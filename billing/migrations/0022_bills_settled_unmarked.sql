-- Bills whose balance is settled but whose status does not say so yet (a bill
-- issued with nothing to pay, or paid by credit moved into it): almost always
-- empty, so the overdue evaluation finds them without reading the month of
-- bills that are not yet due.
CREATE INDEX bills_settled_unmarked ON bills (due_at) WHERE status <> 'paid' AND paid_cents >= total_cents;
