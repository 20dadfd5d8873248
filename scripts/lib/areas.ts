/**
 * The area codes generated traffic uses: real NPAs of the US (with Puerto
 * Rico) and Canada, each with the IANA zone most of its subscribers live in
 * and a rough population weight, plus the other kinds of numbers a North
 * American subscriber dials. Roughly right is enough: this feeds demos,
 * tests and benchmarks, not billing.
 */
export type HomeCountry = 'US' | 'CA';

export interface AreaCode {
  npa: string;
  /** The country libphonenumber-js reports for the NPA (PR is a US territory). */
  region: string;
  country: HomeCountry;
  zone: string;
  weight: number;
}

const a = (npa: string, region: string, country: HomeCountry, zone: string, weight: number): AreaCode => ({ npa, region, country, zone, weight });

export const HOME_AREAS: readonly AreaCode[] = Object.freeze([
  a('212', 'US', 'US', 'America/New_York', 6), a('646', 'US', 'US', 'America/New_York', 4),
  a('718', 'US', 'US', 'America/New_York', 6), a('917', 'US', 'US', 'America/New_York', 5),
  a('617', 'US', 'US', 'America/New_York', 3), a('202', 'US', 'US', 'America/New_York', 2),
  a('305', 'US', 'US', 'America/New_York', 3), a('404', 'US', 'US', 'America/New_York', 3),
  a('312', 'US', 'US', 'America/Chicago', 3), a('773', 'US', 'US', 'America/Chicago', 3),
  a('214', 'US', 'US', 'America/Chicago', 3), a('713', 'US', 'US', 'America/Chicago', 4),
  a('303', 'US', 'US', 'America/Denver', 3), a('602', 'US', 'US', 'America/Phoenix', 3),
  a('213', 'US', 'US', 'America/Los_Angeles', 4), a('415', 'US', 'US', 'America/Los_Angeles', 3),
  a('206', 'US', 'US', 'America/Los_Angeles', 3), a('907', 'US', 'US', 'America/Anchorage', 1),
  a('808', 'US', 'US', 'Pacific/Honolulu', 1), a('787', 'PR', 'US', 'America/Puerto_Rico', 1),
  a('416', 'CA', 'CA', 'America/Toronto', 5), a('647', 'CA', 'CA', 'America/Toronto', 3),
  a('613', 'CA', 'CA', 'America/Toronto', 2), a('514', 'CA', 'CA', 'America/Toronto', 4),
  a('604', 'CA', 'CA', 'America/Vancouver', 3), a('403', 'CA', 'CA', 'America/Edmonton', 2),
  a('204', 'CA', 'CA', 'America/Winnipeg', 1), a('306', 'CA', 'CA', 'America/Regina', 1),
  a('902', 'CA', 'CA', 'America/Halifax', 1), a('709', 'CA', 'CA', 'America/St_Johns', 1),
]);

/** NANP countries outside the US and Canada (an international call, still +1). */
export const NANP_INTERNATIONAL: readonly { npa: string; region: string }[] = Object.freeze([
  { npa: '876', region: 'JM' }, { npa: '242', region: 'BS' }, { npa: '809', region: 'DO' },
  { npa: '868', region: 'TT' }, { npa: '441', region: 'BM' },
]);

export const TOLL_FREE: readonly string[] = Object.freeze(['800', '833', '844', '855', '866', '877', '888']);
export const PREMIUM: readonly string[] = Object.freeze(['900']);

/** Service codes with how often each is dialled among service calls. */
export const SERVICE_CODE_MIX: readonly { code: string; weight: number }[] = Object.freeze([
  { code: '911', weight: 30 }, { code: '611', weight: 25 }, { code: '411', weight: 15 },
  { code: '311', weight: 15 }, { code: '211', weight: 10 }, { code: '988', weight: 5 },
]);

/**
 * Relative calling activity by local hour of day (0–23): quiet nights, a
 * morning ramp, busy afternoons, an evening tail.
 */
export const HOUR_WEIGHTS: readonly number[] = Object.freeze([
  0.15, 0.08, 0.05, 0.04, 0.05, 0.12, 0.3, 0.6, 0.9, 1.0, 1.05, 1.05,
  1.0, 1.0, 1.0, 1.0, 1.05, 1.1, 1.0, 0.9, 0.75, 0.6, 0.45, 0.3,
]);
/** Saturdays and Sundays carry this share of a weekday's calls. */
export const WEEKEND_FACTOR = 0.75;
