import type { StackEndpoints } from './stack.ts';

/** Placeholder until the topic catalog lands: provisioning is wired in a following commit. */
export async function provisionAll(_e: StackEndpoints, _log: (m: string) => void) {
  return { topics: 0, subjects: 0 };
}
