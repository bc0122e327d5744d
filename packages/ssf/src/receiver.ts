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
  | { readonly kind: 'verification'; readonly set: VerifiedSet; readonly state: string | undefined }
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

  transmitter(name: string): Transmitter | undefined {
    return this.#byName.get(name)?.t;
  }

  /**
   * Checks a push's `Authorization` header against the transmitter's token (constant time). Throws
   * SetRejection `authentication_failed` when it is missing or wrong, `access_denied` when the
   * transmitter may not push at all.
   */
  authenticate(name: string, authorization: string | undefined): Transmitter {
    const entry = this.#byName.get(name);
    if (entry === undefined)
      throw new SetRejection(
        'access_denied',
        'unknown_transmitter',
        'no transmitter of this name is configured',
      );
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
    const entry = this.#byName.get(name);
    if (entry === undefined)
      throw new SetRejection(
        'access_denied',
        'unknown_transmitter',
        'no transmitter of this name is configured',
      );
    const set = await entry.verifier.verify(token);
    if (set.eventType === EVENT_TYPES.verification) {
      const state = set.event.state;
      return { kind: 'verification', set, state: typeof state === 'string' ? state : undefined };
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
