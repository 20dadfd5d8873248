/**
 * The replica's memory with N subscribers, in a fresh process (nothing else
 * on its heap): node --expose-gc --import tsx bench/admission/memory.ts N [keys]
 * Prints the ReplicaMemoryReport as one JSON line. `keys` feeds numeric keys
 * instead of E.164 strings (faster, same result).
 */
import { measureReplicaMemory } from '../../admission/replica/memory.ts';

const n = Number(process.argv[2] ?? 10_000_000);
const viaStrings = process.argv[3] !== 'keys';
process.stdout.write(`${JSON.stringify({ viaStrings, ...measureReplicaMemory(n, { viaStrings }) })}\n`);
