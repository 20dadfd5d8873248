/** writeUuid: each bill's subscriber id goes into its binary COPY tuple as the 16 bytes PostgreSQL reads. */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { writeUuid, writerOf } from './usage.ts';

describe('writeUuid', () => {
  it('writes the 16 bytes of a UUID given in either case, where it is told', () => {
    for (let i = 0; i < 200; i++) {
      const id = randomUUID();
      const buf = Buffer.alloc(20, 0xee);
      writeUuid(buf, 2, i % 2 ? id.toUpperCase() : id);
      expect(buf.subarray(2, 18).toString('hex')).toBe(id.replaceAll('-', ''));
      expect([buf[0], buf[1], buf[18], buf[19]]).toEqual([0xee, 0xee, 0xee, 0xee]);
    }
  });

  it('refuses anything else, naming it', () => {
    const id = '0190b9d1-3c2e-7a1b-9e8f-00000000000a';
    // A character whose code is 0x130 reads as '0' once masked to a byte: it must be refused all the same.
    for (const bad of [id.slice(1), `${id}0`, id.replace('-', '0'), id.replace('a', 'g'), id.replace('a', '\u0130'), id.replace('0', '\u0130'), id.replaceAll('-', ' ')]) {
      expect(() => writeUuid(Buffer.alloc(16), 0, bad)).toThrow(`not a UUID: ${JSON.stringify(bad)}`);
    }
  });

  it('writerOf splits subscribers by the parity of their id\'s last digit', () => {
    expect(['...-00000000000a', '...-00000000000B', '...-000000000000', '...-000000000009'].map(writerOf)).toEqual([0, 1, 0, 1]);
  });
});
