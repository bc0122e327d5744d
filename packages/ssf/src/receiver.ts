import { createHash, timingSafeEqual } from 'node:crypto';
import { CompromiseSignalEvent } from '@assurance/schemas';
import type { JWTVerifyGetKey } from 'jose';
import type { Transmitter } from './config.ts';
import { EVENT_TYPES } from './events.ts';
import { DEFAULT_MAPPING, type Mapped, type MappingRule, mapEvent } from './mapping.ts';
import { resolveSubject, SubjectError } from './subject.ts';
import { SetRejection, SetVerifier, type VerifiedSet } from './verify.ts';

/** What became of one accepted SET. */
export type Received =
  | { readonly kind: 'signal'; readonly set: VerifiedSet; readonly event: CompromiseSignalEvent }
  | {
      readonly kind: 'verification';
      readonly set: VerifiedSet;
      readonly state: string | undefined;
      /** Whether it echoed a state we asked for (an unsolicited one proves nothing). */
      readonly verified: boolean;
    }
  | { readonly kind: 'stream_updated'; readonly set: VerifiedSet; readonly status: string }
  | {
      readonly kind: 'ignored';
      readonly set: VerifiedSet;
      readonly why: Extract<Mapped, { kind: 'ignored' }>['why'];
    };

export interface ReceiverDeps {
  readonly transmitters: readonly Transmitter[];
  /** Produces a signal to Kafka; resolves once acknowledged (a SET is acknowledged only then). */
  readonly publish: (event: CompromiseSignalEvent) => Promise<void>;
  readonly mapping?: readonly MappingRule[];
  /** Key resolvers by transmitter name instead of its `jwksUri` (tests). */
  readonly keys?: ReadonlyMap<string, JWTVerifyGetKey>;
  readonly clock?: () => number;
  /**
   * A verification SET echoed `state`: whether we asked for it (used up now). Absent: states are
   * not checked. A state we never asked for is refused `invalid_state`.
   */
  readonly verification?: (transmitter: string, state: string, at: number) => Promise<boolean>;
  /** A `stream-updated` SET announced the stream's status. */
  readonly streamUpdated?: (
    transmitter: string,
    status: string,
    reason: string | undefined,
    at: number,
  ) => Promise<void>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The receiving side of the Shared Signals Framework: a SET from a configured transmitter is
 * authenticated, verified (verify.ts), its subject resolved (subject.ts), mapped (mapping.ts),
 * validated against the contract and produced as a compromise signal. A SET delivered again maps
 * to the same event id, which the engine applies once: it is acknowledged again, as RFC 8935 asks.
 */
export class SetReceiver {
  readonly #d: ReceiverDeps;
  readonly #byName: Map<string, { t: Transmitter; verifier: SetVerifier }>;

  constructor(deps: ReceiverDeps) {
    this.#d = deps;
    this.#byName = new Map(
      deps.transmitters.map((t) => [
        t.name,
        {
          t,
          verifier: new SetVerifier({
            issuer: t.issuer,
            audience: t.audience,
            algorithms: t.algorithms,
            keys: deps.keys?.get(t.name) ?? t.jwksUri,
            maxAgeMs: t.maxAgeMs,
            ...(deps.clock ? { clock: deps.clock } : {}),
          }),
        },
      ]),
    );
  }

  /** The transmitter called `name`, or `access_denied` (a name in a URL is anyone's to choose). */
  #entry(name: string): { t: Transmitter; verifier: SetVerifier } {
    const entry = this.#byName.get(name);
    if (entry === undefined)
      throw new SetRejection(
        'access_denied',
        'unknown_transmitter',
        'no transmitter of this name is configured',
      );
    return entry;
  }

  transmitter(name: string): Transmitter | undefined {
    return this.#byName.get(name)?.t;
  }

  /**
   * Checks a push's `Authorization` header against the transmitter's token (constant time). Throws
   * SetRejection `authentication_failed` when it is missing or wrong, `access_denied` when the
   * transmitter may not push at all.
   */
  authenticate(name: string, authorization: string | undefined): Transmitter {
    const entry = this.#entry(name);
    const expected = entry.t.pushToken;
    if (expected === undefined)
      throw new SetRejection(
        'access_denied',
        'not_authenticated',
        'this transmitter does not deliver by push',
      );
    const given = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1] ?? '';
    if (!timingSafeEqual(digest(given), digest(expected)))
      throw new SetRejection(
        'authentication_failed',
        'not_authenticated',
        'a valid bearer token is required',
      );
    return entry.t;
  }

  /** Verifies, maps and publishes one SET from transmitter `name`. */
  async receive(name: string, token: string): Promise<Received> {
    const entry = this.#entry(name);
    const set = await entry.verifier.verify(token);
    const now = (this.#d.clock ?? Date.now)();
    if (set.eventType === EVENT_TYPES.verification) {
      const state = typeof set.event.state === 'string' ? set.event.state : undefined;
      if (state === undefined || this.#d.verification === undefined)
        return { kind: 'verification', set, state, verified: false };
      if (!(await this.#d.verification(name, state, now)))
        throw new SetRejection(
          'invalid_state',
          'state',
          'this verification state was not asked for, was echoed already, or expired',
        );
      return { kind: 'verification', set, state, verified: true };
    }
    if (set.eventType === EVENT_TYPES.streamUpdated) {
      const status = set.event.status;
      if (status !== 'enabled' && status !== 'paused' && status !== 'disabled')
        throw new SetRejection(
          'invalid_request',
          'events',
          'a stream-updated event needs status enabled, paused or disabled',
        );
      const reason = typeof set.event.reason === 'string' ? set.event.reason.slice(0, 200) : undefined;
      await this.#d.streamUpdated?.(name, status, reason, now);
      return { kind: 'stream_updated', set, status };
    }
    let subject: ReturnType<typeof resolveSubject>;
    try {
      subject =
        set.subject === undefined
          ? undefined
          : resolveSubject(set.subject, {
              identityIssuers: entry.t.identityIssuers,
              opaqueIsIdentity: entry.t.opaqueIsIdentity,
              criticalMembers: entry.t.criticalSubjectMembers,
            });
    } catch (err) {
      if (err instanceof SubjectError) throw new SetRejection('invalid_request', 'subject', err.message);
      throw err;
    }
    const mapped = mapEvent(set, subject, entry.t, this.#d.mapping ?? DEFAULT_MAPPING);
    if (mapped.kind === 'ignored') return { kind: 'ignored', set, why: mapped.why };
    // The contract's own validation (and normalization: phone numbers, emails) before Kafka.
    const valid = CompromiseSignalEvent.safeParse(mapped.event);
    if (!valid.success)
      throw new SetRejection(
        'invalid_request',
        'subject',
        `the event cannot become a signal: ${valid.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    await this.#d.publish(valid.data);
    return { kind: 'signal', set, event: valid.data };
  }
}
