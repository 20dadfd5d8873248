/**
 * Strict RFC 3339 instants for bulk-load files: a date, a time and an explicit
 * offset (Z or ±hh:mm). A local time without an offset is refused rather than
 * guessed: the CLI cannot know which zone the switch meant.
 */
const RE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

export type InstantResult = { ok: true; ms: number } | { ok: false; reason: string };

export function parseInstant(text: string): InstantResult {
  const s = text.trim();
  if (s === '') return { ok: false, reason: 'missing' };
  const m = RE.exec(s);
  if (!m) {
    const why = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s) ? 'has no UTC offset (add Z or ±hh:mm)' : 'is not an RFC 3339 instant such as 2026-10-14T18:03:07-04:00';
    return { ok: false, reason: `${JSON.stringify(clip(s))} ${why}` };
  }
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  const local = Date.UTC(y, mo - 1, d, h, mi, sec);
  const back = new Date(local);
  if (mo < 1 || mo > 12 || back.getUTCDate() !== d || back.getUTCMonth() !== mo - 1 || h > 23 || mi > 59 || sec > 59) {
    return { ok: false, reason: `${JSON.stringify(clip(s))} is not a real date and time` };
  }
  let offsetMin = 0;
  if (!m[8]) {
    const oh = Number(m[10]), om = Number(m[11]);
    if (oh > 23 || om > 59) return { ok: false, reason: `${JSON.stringify(clip(s))} has an impossible offset` };
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // Storage keeps milliseconds; finer digits are truncated, not rounded, so a
  // call never ends later than the switch said.
  const frac = m[7] ? Number(m[7].padEnd(3, '0').slice(0, 3)) : 0;
  return { ok: true, ms: local - offsetMin * 60_000 + frac };
}

const clip = (s: string) => (s.length > 60 ? `${s.slice(0, 57)}...` : s);
