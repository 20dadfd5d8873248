import { describe, expect, it } from 'vitest';
import { IANAZone } from 'luxon';
import { SUPPORTED_TIME_ZONES, checkTimeZone, isSupportedTimeZone } from './timezones.ts';

const JAN = Date.UTC(2025, 0, 15);
const JUL = Date.UTC(2025, 6, 15);

describe('supported time zones', () => {
  it('is sorted, unique, and every name is a zone the runtime knows', () => {
    expect([...SUPPORTED_TIME_ZONES]).toEqual([...SUPPORTED_TIME_ZONES].sort());
    expect(new Set(SUPPORTED_TIME_ZONES).size).toBe(SUPPORTED_TIME_ZONES.length);
    expect(SUPPORTED_TIME_ZONES.length).toBe(54);
    for (const z of SUPPORTED_TIME_ZONES) expect(IANAZone.isValidZone(z), z).toBe(true);
  });

  it('spans Newfoundland (UTC-3:30) to Hawaii (UTC-10) in winter and summer', () => {
    const offsets = SUPPORTED_TIME_ZONES.flatMap((z) => [IANAZone.create(z).offset(JAN), IANAZone.create(z).offset(JUL)]);
    expect(Math.max(...offsets.filter((_, i) => i % 2 === 0))).toBe(-210); // St_Johns standard time
    expect(Math.min(...offsets)).toBe(-600); // Honolulu, Adak standard time
    expect(Math.max(...offsets)).toBe(-150); // St_Johns daylight time
  });

  it.each([
    'America/St_Johns', 'America/Halifax', 'America/New_York', 'America/Chicago', 'America/Denver', 'America/Phoenix',
    'America/Los_Angeles', 'America/Anchorage', 'America/Regina', 'America/Puerto_Rico', 'America/St_Thomas', 'Pacific/Honolulu',
    'America/Toronto', 'America/Vancouver', 'America/Indiana/Indianapolis', 'America/Adak',
  ])('accepts %s', (tz) => {
    expect(isSupportedTimeZone(tz)).toBe(true);
    expect(checkTimeZone(tz)).toEqual({ ok: true, timeZone: tz });
  });

  it.each([
    ['US/Eastern', '"US/Eastern" is not a canonical zone name; use America/New_York'],
    ['America/Montreal', '"America/Montreal" is not a canonical zone name; use America/Toronto'],
    ['America/Thunder_Bay', '"America/Thunder_Bay" is not a canonical zone name; use America/Toronto'],
    ['america/new_york', '"america/new_york" is not a canonical zone name; use America/New_York'],
    ['Canada/Newfoundland', '"Canada/Newfoundland" is not a canonical zone name; use America/St_Johns'],
    ['US/Hawaii', '"US/Hawaii" is not a canonical zone name; use Pacific/Honolulu'],
  ])('refuses the alias %s and names the canonical zone', (tz, reason) => {
    expect(isSupportedTimeZone(tz)).toBe(false);
    expect(checkTimeZone(tz)).toEqual({ ok: false, reason });
  });

  it.each(['Pacific/Guam', 'Pacific/Saipan', 'Pacific/Pago_Pago', 'America/Mexico_City', 'America/Jamaica', 'Europe/London', 'UTC'])(
    'refuses %s as outside the served area',
    (tz) => {
      const r = checkTimeZone(tz);
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.reason).toBe(
        `time zone "${tz}" is not served: only US and Canadian zones from America/St_Johns to Pacific/Honolulu (incl. America/Puerto_Rico and America/St_Thomas)`,
      );
    },
  );

  it.each([
    ['Nope/Zone', 'unknown time zone "Nope/Zone"; use an IANA name such as America/New_York'],
    ['', 'must be an IANA time zone name such as America/New_York'],
    [42, 'must be an IANA time zone name such as America/New_York'],
    [undefined, 'must be an IANA time zone name such as America/New_York'],
  ])('refuses %j with a reason', (tz, reason) => {
    expect(isSupportedTimeZone(tz)).toBe(false);
    expect(checkTimeZone(tz)).toEqual({ ok: false, reason });
  });
});
