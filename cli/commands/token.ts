/** `phonebill token`: a development API token signed with JWT_SECRET. */
import { parseArgs } from 'node:util';
import type { CliCommand } from '../command.ts';
import { loadDevConfig } from '../../core/config.ts';
import { systemClock } from '../../core/clock.ts';
import { parseTtl, signDevToken, UUID_RE, type Role } from '../../billing/auth/index.ts';

export const command: CliCommand = {
  summary: 'Print a development API token (operator, subscriber or payments) signed with JWT_SECRET',
  usage: `Usage: phonebill token (--operator | --subscriber ID | --payments) [--ttl 1h]

Prints a JWT for the billing API, signed HS256 with JWT_SECRET, with the
configured issuer (JWT_ISSUER) and audience (JWT_AUDIENCE).

  --operator         role operator: manage subscribers, read any bill, start billing runs
  --subscriber ID    role subscriber with sub = ID (the subscriber's UUID): read own bills
  --payments         role payments: a payment processor
  --ttl DURATION     lifetime: 90s, 15m, 1h (default), 7d

Example:
  curl -H "Authorization: Bearer $(npx phonebill token --operator)" http://127.0.0.1:8080/v1/subscribers/ID`,

  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({ args: argv, options: {
        operator: { type: 'boolean' }, subscriber: { type: 'string' }, payments: { type: 'boolean' }, ttl: { type: 'string', default: '1h' },
      } }));
    } catch (e) {
      console.error(`phonebill token: ${(e as Error).message}\n\n${this.usage}`);
      return 2;
    }
    const chosen = [values.operator && 'operator', values.subscriber !== undefined && 'subscriber', values.payments && 'payments'].filter(Boolean) as Role[];
    if (chosen.length !== 1) {
      console.error(`phonebill token: choose exactly one of --operator, --subscriber ID, --payments\n\n${this.usage}`);
      return 2;
    }
    const role = chosen[0]!;
    if (role === 'subscriber' && !UUID_RE.test(values.subscriber!)) {
      console.error(`phonebill token: --subscriber must be the subscriber's id (a UUID), got ${JSON.stringify(values.subscriber)}`);
      return 2;
    }
    let ttlSeconds: number;
    try { ttlSeconds = parseTtl(values.ttl!); } catch (e) { console.error(`phonebill token: ${(e as Error).message}`); return 2; }
    // Without a configured key source this is the development secret `npm start` uses.
    const config = loadDevConfig();
    if (!config.jwtSecret) {
      console.error('phonebill token: JWT_SECRET is not set; development tokens are signed with it (production tokens come from your identity provider)');
      return 2;
    }
    const token = await signDevToken({
      secret: config.jwtSecret, issuer: config.jwtIssuer, audience: config.jwtAudience,
      role, sub: role === 'subscriber' ? values.subscriber!.toLowerCase() : undefined, ttlSeconds, now: systemClock.now(),
    });
    console.log(token);
    return 0;
  },
};
