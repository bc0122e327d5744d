import { randomBytes } from 'node:crypto';
import type { TokenGrant } from '../tokens.ts';

/**
 * Console sessions, in this API process's memory: a random id in an HttpOnly cookie stands for the
 * token an analyst signed in with (the token itself is never stored in the cookie, a URL or a log).
 * Each session has its own CSRF token, which every form posts back. Sessions end after
 * `idleMs` without use or `maxMs` in all, and at sign-out; an API restart signs everyone out.
 */
export interface ConsoleSession {
  readonly id: string;
  readonly csrf: string;
  readonly grant: TokenGrant;
  readonly createdAt: number;
  lastSeen: number;
}

export class SessionStore {
  readonly #sessions = new Map<string, ConsoleSession>();
  readonly #idleMs: number;
  readonly #maxMs: number;

  constructor(idleMs = 30 * 60_000, maxMs = 8 * 3_600_000) {
    this.#idleMs = idleMs;
    this.#maxMs = maxMs;
  }

  create(grant: TokenGrant, now = Date.now()): ConsoleSession {
    this.#sweep(now);
    const s: ConsoleSession = {
      id: randomBytes(32).toString('base64url'),
      csrf: randomBytes(32).toString('base64url'),
      grant,
      createdAt: now,
      lastSeen: now,
    };
    this.#sessions.set(s.id, s);
    return s;
  }

  get(id: string | undefined, now = Date.now()): ConsoleSession | undefined {
    if (!id) return undefined;
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    if (now - s.lastSeen > this.#idleMs || now - s.createdAt > this.#maxMs) {
      this.#sessions.delete(id);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  /** Whether the session is still valid, without counting this as use (a live stream is not). */
  alive(s: ConsoleSession, now = Date.now()): boolean {
    return (
      this.#sessions.get(s.id) === s && now - s.lastSeen <= this.#idleMs && now - s.createdAt <= this.#maxMs
    );
  }

  destroy(id: string | undefined): void {
    if (id) this.#sessions.delete(id);
  }

  #sweep(now: number): void {
    for (const [id, s] of this.#sessions)
      if (now - s.lastSeen > this.#idleMs || now - s.createdAt > this.#maxMs) this.#sessions.delete(id);
  }
}
