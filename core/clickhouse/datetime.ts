/**
 * DateTime64(3) values as ClickHouse reads them in TabSeparated, for every
 * writer of instants (ingest's call lines, billing's staged periods).
 *
 * ClickHouse reads a 13-digit integer as epoch milliseconds under every
 * date_time_input_format (basic, best_effort, best_effort_us), and parses it
 * about three times faster than 'YYYY-MM-DD hh:mm:ss.sss'. Shorter integers
 * are ambiguous (read as seconds, or refused), so instants before
 * 2001-09-09T01:46:40Z are written as text.
 */
const PAD2: string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3: string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DAY_MS = 86_400_000;

// Calls cluster on a few days: 'YYYY-MM-DD ' is formatted once per day and
// kept in a small direct-mapped cache (a pure function of its input).
const DAY_SLOTS = 128;
const cachedDay = new Float64Array(DAY_SLOTS).fill(NaN);
const cachedDayText: string[] = new Array<string>(DAY_SLOTS).fill('');

function dayText(day: number): string {
  const slot = day & (DAY_SLOTS - 1);
  if (cachedDay[slot] !== day) {
    cachedDay[slot] = day;
    cachedDayText[slot] = `${new Date(day * DAY_MS).toISOString().slice(0, 10)} `;
  }
  return cachedDayText[slot]!;
}

/** 'YYYY-MM-DD hh:mm:ss.sss' in UTC, for 0 <= ms (validated upstream). */
export function formatDateTime64(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  let rest = ms - day * DAY_MS;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = Math.floor(rest / 1000);
  return `${dayText(day)}${PAD2[h]}:${PAD2[m]}:${PAD2[s]}.${PAD3[rest - s * 1000]}`;
}

export const MS_13_DIGITS_MIN = 1e12;
export const MS_13_DIGITS_MAX = 1e13;

/** A DateTime64(3) field: epoch milliseconds when 13 digits long, else text. */
export function dateTime64Field(ms: number): string {
  return ms >= MS_13_DIGITS_MIN && ms < MS_13_DIGITS_MAX ? String(ms) : formatDateTime64(ms);
}
