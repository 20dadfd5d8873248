/**
 * The rules a subscriber must meet, shared by the API and the CSV import.
 * Every problem is reported, each with the (camelCase) field at fault.
 */
import { parseNumber } from '../../core/numbers/index.ts';
import { checkTimeZone, loadTariff, parseLocalDate, type Tariff } from '../domain/index.ts';
import { isDomainError } from '../../core/errors.ts';
import type { NewSubscriber } from '../adapters/postgres/index.ts';

export type SubscriberField = 'phoneNumber' | 'subscriptionDate' | 'timeZone' | 'plan';

export interface FieldProblem { field: SubscriberField; reason: string }

export interface SubscriberInput {
  phoneNumber?: unknown;
  subscriptionDate?: unknown;
  timeZone?: unknown;
  plan?: unknown;
}

export interface SubscriberRules {
  /** Plans the tariff defines. */
  plans: ReadonlySet<string>;
  /** The plan of a subscriber created without one. */
  defaultPlan: string;
}

export const rulesFromTariff = (t: Tariff): SubscriberRules => ({ plans: new Set(Object.keys(t.plans)), defaultPlan: t.defaultPlan });

let defaults: SubscriberRules | undefined;
/** The rules of the tariff file in the repo, loaded (and validated) once. */
export function defaultSubscriberRules(): SubscriberRules {
  defaults ??= rulesFromTariff(loadTariff());
  return defaults;
}

function checkPhone(v: unknown): string | FieldProblem {
  if (typeof v !== 'string' || v === '') return { field: 'phoneNumber', reason: 'is required (E.164, e.g. +12025550143)' };
  const p = parseNumber(v);
  if (p.kind === 'invalid') return { field: 'phoneNumber', reason: p.reason };
  if (p.kind === 'service_code') return { field: 'phoneNumber', reason: `${v} is a service code, not a subscriber line` };
  if (p.tollFree) return { field: 'phoneNumber', reason: `${v} is toll-free, not a geographic subscriber line` };
  if (p.premium) return { field: 'phoneNumber', reason: `${v} is a premium-rate (900) number, not a geographic subscriber line` };
  return p.e164;
}

function checkDate(v: unknown): string | FieldProblem {
  if (typeof v !== 'string' || v === '') return { field: 'subscriptionDate', reason: 'is required (YYYY-MM-DD)' };
  try {
    parseLocalDate(v, 'subscriptionDate');
  } catch (e) {
    // parseLocalDate's messages are "subscriptionDate: <reason>"; keep the reason only.
    if (isDomainError(e)) return { field: 'subscriptionDate', reason: e.message.replace(/^subscriptionDate: /, '') };
    throw e;
  }
  const year = Number(v.slice(0, 4));
  if (year < 1900 || year > 2199) return { field: 'subscriptionDate', reason: `year must be 1900-2199, got ${v}` };
  return v;
}

export function validateSubscriber(input: SubscriberInput, rules: SubscriberRules = defaultSubscriberRules()):
  { ok: true; value: NewSubscriber } | { ok: false; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const phone = checkPhone(input.phoneNumber);
  if (typeof phone !== 'string') problems.push(phone);
  const date = checkDate(input.subscriptionDate);
  if (typeof date !== 'string') problems.push(date);
  const tz = checkTimeZone(input.timeZone);
  if (!tz.ok) problems.push({ field: 'timeZone', reason: input.timeZone === undefined || input.timeZone === '' ? 'is required (an IANA zone such as America/New_York)' : tz.reason });
  const plan = input.plan === undefined || input.plan === '' ? rules.defaultPlan : input.plan;
  if (typeof plan !== 'string' || !rules.plans.has(plan)) {
    problems.push({ field: 'plan', reason: `unknown plan ${JSON.stringify(plan)}; plans: ${[...rules.plans].sort().join(', ')}` });
  }
  if (problems.length) return { ok: false, problems };
  return { ok: true, value: { phoneNumber: phone as string, subscriptionDate: date as string, timeZone: (tz as { timeZone: string }).timeZone, plan: plan as string } };
}
