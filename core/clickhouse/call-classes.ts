/**
 * calls.call_class is an Enum8 (migration 0005): each class's code, in the
 * names' alphabetical order (ORDER BY call_class orders as the text did). The
 * rating reads the code, not the text; a test checks the table's type against
 * this.
 */
import type { CallClass } from '../numbers/index.ts';

export const CALL_CLASS_CODES: Readonly<Record<CallClass, number>> = {
  cross_border: 1, domestic: 2, nanp_international: 3, premium: 4, service_code: 5, toll_free: 6,
};

/** The column's type as ClickHouse spells it. */
export const CALL_CLASS_TYPE = `Enum8(${Object.entries(CALL_CLASS_CODES).map(([name, code]) => `'${name}' = ${code}`).join(', ')})`;
