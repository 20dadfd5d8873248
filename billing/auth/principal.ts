/** Who is calling, as established from a verified token and nothing else. */
export type Role = 'operator' | 'subscriber' | 'payments';

export type Principal =
  | { role: 'operator'; tokenSubject?: string }
  | { role: 'payments'; tokenSubject?: string }
  | { role: 'subscriber'; subscriberId: string };

export const ROLES: readonly Role[] = ['operator', 'subscriber', 'payments'];

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
