/** Every subscriber query. Rows come back camelCased; dates stay 'YYYY-MM-DD' (see core/postgres/pool.ts). */
import type { Pool } from '../../../core/postgres/index.ts';
import { DomainError } from '../../../core/errors.ts';
import { isUniqueViolation, mapPgError } from './errors.ts';

export type SubscriberStatus = 'active' | 'suspended' | 'closed';

export interface Subscriber {
  id: string;
  phoneNumber: string;
  subscriptionDate: string;
  timeZone: string;
  anniversaryDay: number;
  plan: string;
  status: SubscriberStatus;
  createdAt: Date;
}

export interface NewSubscriber {
  phoneNumber: string;
  subscriptionDate: string;
  timeZone: string;
  plan: string;
}

interface Row {
  id: string; phone_number: string; subscription_date: string; time_zone: string;
  anniversary_day: number; plan: string; status: SubscriberStatus; created_at: Date;
}

const COLUMNS = 'id, phone_number, subscription_date, time_zone, anniversary_day, plan, status, created_at';

const toSubscriber = (r: Row): Subscriber => ({
  id: r.id, phoneNumber: r.phone_number, subscriptionDate: r.subscription_date, timeZone: r.time_zone,
  anniversaryDay: r.anniversary_day, plan: r.plan, status: r.status, createdAt: r.created_at,
});

export interface SubscriberRepository {
  /** Throws conflict SUBSCRIBER_EXISTS (field phoneNumber) when the number is taken. */
  insert(s: NewSubscriber): Promise<Subscriber>;
  /** One multi-row INSERT; numbers already present are skipped. Returns the numbers actually inserted. */
  insertMany(rows: NewSubscriber[]): Promise<Set<string>>;
  get(id: string): Promise<Subscriber | undefined>;
  getByPhone(phoneNumber: string): Promise<Subscriber | undefined>;
}

export function createSubscriberRepository(pool: Pool): SubscriberRepository {
  return {
    async insert(s) {
      try {
        const { rows } = await pool.query<Row>(
          `INSERT INTO subscribers (phone_number, subscription_date, time_zone, plan) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
          [s.phoneNumber, s.subscriptionDate, s.timeZone, s.plan],
        );
        return toSubscriber(rows[0]!);
      } catch (e) {
        if (isUniqueViolation(e, 'subscribers_phone_number_key')) {
          throw new DomainError('conflict', 'SUBSCRIBER_EXISTS', `phoneNumber: ${s.phoneNumber} is already a subscriber`, { field: 'phoneNumber' });
        }
        return mapPgError(e);
      }
    },

    async insertMany(rows) {
      if (rows.length === 0) return new Set();
      // unnest keeps it one statement with four parameters whatever the batch size.
      const { rows: out } = await pool.query<{ phone_number: string }>(
        `INSERT INTO subscribers (phone_number, subscription_date, time_zone, plan)
         SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[])
         ON CONFLICT (phone_number) DO NOTHING
         RETURNING phone_number`,
        [rows.map((r) => r.phoneNumber), rows.map((r) => r.subscriptionDate), rows.map((r) => r.timeZone), rows.map((r) => r.plan)],
      ).catch(mapPgError);
      return new Set(out.map((r) => r.phone_number));
    },

    async get(id) {
      const { rows } = await pool.query<Row>(`SELECT ${COLUMNS} FROM subscribers WHERE id = $1`, [id]).catch(mapPgError);
      return rows[0] && toSubscriber(rows[0]);
    },

    async getByPhone(phoneNumber) {
      const { rows } = await pool.query<Row>(`SELECT ${COLUMNS} FROM subscribers WHERE phone_number = $1`, [phoneNumber]).catch(mapPgError);
      return rows[0] && toSubscriber(rows[0]);
    },
  };
}
