/** Subscriber use cases: create (validated), read. */
import { DomainError, notFound } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { Subscriber, SubscriberRepository } from '../adapters/postgres/index.ts';
import { defaultSubscriberRules, validateSubscriber, type SubscriberInput, type SubscriberRules } from './validate.ts';

export interface SubscriberService {
  /** Throws invalid (first problem's field; the message lists them all) or conflict SUBSCRIBER_EXISTS. */
  create(input: SubscriberInput): Promise<Subscriber>;
  /** Throws not_found SUBSCRIBER_NOT_FOUND. */
  get(id: string): Promise<Subscriber>;
}

export interface SubscriberServiceOptions {
  repo: SubscriberRepository;
  rules?: SubscriberRules;
  log?: Logger;
  /**
   * Awaited after a subscriber is stored and before create() resolves — e.g.
   * admission publishing the number to Redis so the API's answer implies it.
   */
  onCreated?: (s: Subscriber) => Promise<void>;
}

export function createSubscriberService(opts: SubscriberServiceOptions): SubscriberService {
  const rules = opts.rules ?? defaultSubscriberRules();
  return {
    async create(input) {
      const v = validateSubscriber(input, rules);
      if (!v.ok) {
        const first = v.problems[0]!;
        throw new DomainError('invalid', 'INVALID_ARGUMENT', v.problems.map((p) => `${p.field}: ${p.reason}`).join('; '), { field: first.field });
      }
      const s = await opts.repo.insert(v.value);
      opts.log?.info({ subscriberId: s.id }, 'subscriber created');
      if (opts.onCreated) await opts.onCreated(s);
      return s;
    },
    async get(id) {
      const s = await opts.repo.get(id);
      if (!s) throw notFound('subscriber', 'SUBSCRIBER_NOT_FOUND');
      return s;
    },
  };
}
