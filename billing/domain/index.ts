/**
 * The pure billing domain: served time zones, anniversary cycles, the tariff
 * and its rating rules, and the reference rater that checks the SQL path.
 * No I/O except loadTariff reading the tariff file.
 */
export { SUPPORTED_TIME_ZONES, isSupportedTimeZone, checkTimeZone } from './timezones.ts';
export type { TimeZoneCheck } from './timezones.ts';

export {
  billDate, anniversaryDayOf, cohortDaysEndingOn, cohortsEndingBetween, periodAt, periodContaining, periodsEndingBetween,
  periodsEndedBy, startOfLocalDay, localDateOf, parseLocalDate, formatLocalDate, addDays, daysInMonth,
} from './cycles.ts';
export type { LocalDate, CivilDate, Period, CycleSubscriber, Cohort } from './cycles.ts';

export {
  CALL_CLASSES, LINE_KINDS, lateUsageDescription, MILLI_CENTS_PER_CENT, SECONDS_PER_MINUTE, CHARGE_UNITS_PER_CENT, DEFAULT_INCREMENT_SECONDS,
  MAX_INCREMENT_SECONDS, MAX_RATE_MILLI_CENTS_PER_MINUTE, DEFAULT_TARIFF_PATH, TariffError, billableSeconds,
  callChargeUnits, lineAmountCents, displayMinutes, tariffVersionAt, planOf, loadTariff, parseTariff,
} from './tariff.ts';
export type { CallClass, LineKind, ClassRate, TariffVersion, Plan, Tariff } from './tariff.ts';

/** Test oracle only: never used to issue bills. */
export { referenceBill, referenceBills, referenceClassify, dedupeCalls } from './reference-rater.ts';
export type { RaterCall, RaterSubscriber, ExpectedLine, ExpectedBill, ReferenceBillInput } from './reference-rater.ts';
