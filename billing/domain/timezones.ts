/**
 * The time zones a subscriber may have: every IANA zone of the United States
 * and Canada from Newfoundland (America/St_Johns, UTC−3:30) west to Hawaii
 * (Pacific/Honolulu, UTC−10), taken from the tz database's zone.tab.
 *
 * US territories: Puerto Rico (America/Puerto_Rico) and the US Virgin Islands
 * (America/St_Thomas) are in: they are in the NANP, count as the US for
 * rating, and their UTC−4 lies inside the span. Guam and the Northern Mariana
 * Islands (UTC+10) and American Samoa (UTC−11) are out: they lie outside the
 * Newfoundland-to-Hawaii span the product promises.
 *
 * Only the canonical names are accepted, so that one place has one spelling
 * in the database and in the cohort queries; an alias (US/Eastern,
 * America/Montreal, the zones the tz database merged in 2022 such as
 * America/Thunder_Bay) is refused with the canonical name to use instead.
 */
import { IANAZone } from 'luxon';

const US = [
  'America/New_York', 'America/Detroit', 'America/Kentucky/Louisville', 'America/Kentucky/Monticello',
  'America/Indiana/Indianapolis', 'America/Indiana/Vincennes', 'America/Indiana/Winamac',
  'America/Indiana/Marengo', 'America/Indiana/Petersburg', 'America/Indiana/Vevay',
  'America/Chicago', 'America/Indiana/Tell_City', 'America/Indiana/Knox', 'America/Menominee',
  'America/North_Dakota/Center', 'America/North_Dakota/New_Salem', 'America/North_Dakota/Beulah',
  'America/Denver', 'America/Boise', 'America/Phoenix', 'America/Los_Angeles',
  'America/Anchorage', 'America/Juneau', 'America/Sitka', 'America/Metlakatla', 'America/Yakutat',
  'America/Nome', 'America/Adak', 'Pacific/Honolulu',
];
const US_TERRITORIES = ['America/Puerto_Rico', 'America/St_Thomas'];
const CANADA = [
  'America/St_Johns', 'America/Halifax', 'America/Glace_Bay', 'America/Moncton', 'America/Goose_Bay',
  'America/Blanc-Sablon', 'America/Toronto', 'America/Iqaluit', 'America/Atikokan', 'America/Winnipeg',
  'America/Resolute', 'America/Rankin_Inlet', 'America/Regina', 'America/Swift_Current',
  'America/Edmonton', 'America/Cambridge_Bay', 'America/Inuvik', 'America/Creston',
  'America/Dawson_Creek', 'America/Fort_Nelson', 'America/Whitehorse', 'America/Dawson',
  'America/Vancouver',
];

/** Every accepted zone name, sorted. */
export const SUPPORTED_TIME_ZONES: readonly string[] = Object.freeze([...US, ...US_TERRITORIES, ...CANADA].sort());

const supported = new Set(SUPPORTED_TIME_ZONES);

export function isSupportedTimeZone(tz: unknown): tz is string {
  return typeof tz === 'string' && supported.has(tz);
}

export type TimeZoneCheck = { ok: true; timeZone: string } | { ok: false; reason: string };

/** ICU's canonical id, used only to recognise aliases; undefined when the runtime does not know the name. */
function icuCanonical(tz: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

let canonicalToSupported: Map<string, string> | undefined;
function supportedFor(canonical: string): string | undefined {
  if (!canonicalToSupported) {
    canonicalToSupported = new Map();
    for (const z of SUPPORTED_TIME_ZONES) {
      const c = icuCanonical(z);
      if (c !== undefined && !canonicalToSupported.has(c)) canonicalToSupported.set(c, z);
    }
  }
  return canonicalToSupported.get(canonical);
}

/** Checks a subscriber's zone; the reason is meant to be shown to the operator as is. */
export function checkTimeZone(tz: unknown): TimeZoneCheck {
  if (typeof tz !== 'string' || tz.length === 0) return { ok: false, reason: 'must be an IANA time zone name such as America/New_York' };
  if (supported.has(tz)) return { ok: true, timeZone: tz };
  if (!IANAZone.isValidZone(tz)) return { ok: false, reason: `unknown time zone "${tz}"; use an IANA name such as America/New_York` };
  const canonical = icuCanonical(tz);
  const suggestion = canonical === undefined ? undefined : supportedFor(canonical);
  if (suggestion !== undefined) return { ok: false, reason: `"${tz}" is not a canonical zone name; use ${suggestion}` };
  return {
    ok: false,
    reason: `time zone "${tz}" is not served: only US and Canadian zones from America/St_Johns to Pacific/Honolulu (incl. America/Puerto_Rico and America/St_Thomas)`,
  };
}
