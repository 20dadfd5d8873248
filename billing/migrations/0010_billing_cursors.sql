-- Where each subscriber's billing stands: the next period to bill and when it
-- ends. A billing run reads only the subscribers whose next period has ended
-- (an index range scan) plus those with no cursor yet (new subscribers),
-- instead of every subscriber's whole bill history. It is written in the same
-- transaction as the bills it follows from, so it never disagrees with them;
-- the unique keys on bills stay the guard against billing a period twice.
CREATE TABLE billing_cursors (
  subscriber_id      uuid        PRIMARY KEY REFERENCES subscribers (id),
  next_period_index  integer     NOT NULL CHECK (next_period_index >= 0),
  next_period_end    timestamptz NOT NULL,
  -- The watermark of the last bill (NULL before the first): late usage of
  -- earlier periods is what arrived after it.
  last_watermark     timestamptz
);
CREATE INDEX billing_cursors_next_end ON billing_cursors (next_period_end);
