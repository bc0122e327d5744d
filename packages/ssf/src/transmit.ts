import { createHash } from 'node:crypto';
import type { Decision } from '@assurance/schemas';
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { z } from 'zod';
import { EVENT_TYPES } from './events.ts';

/**
 * The transmitting side: what our decisions tell other relying parties, as Security Event Tokens.
 *
 * - A decision whose risk level differs from the last one sent for the identity is a CAEP
 *   `risk-level-change`.
 * - A decision that newly holds a phone under suspicion is a RISC `credential-compromise` with
 *   `credential_type: phone-sms`. A mailbox under suspicion is the same with `credential_type:
 *   email`: RISC has no type for it; our receiver reads it, others may not.
 * - The subject is `iss_sub` (our issuer, the identity id). `txn` is the decision's sequence, so a
 *   receiver can tell our events of one decision together.
 */

/** What of a decision the events depend on (and what is remembered as last sent). */
export interface SentState {
  readonly sequence: number;
  readonly risk: string;
  readonly phone: boolean;
  readonly mailbox: boolean;
}

const PHONE_CODES = new Set(['sim_swap']);
const MAILBOX_CODES = new Set(['mailbox_tampered']);

/** The state a decision puts the identity in, as far as transmitted events go. */
export function sentStateOf(d: Decision): SentState {
  const scoped = (scope: string) =>
    d.signals.some((s) => s.code === 'channel_compromised' && s.scope === scope);
  return {
    sequence: d.sequence,
    risk: d.riskLevel,
    phone: d.signals.some((s) => PHONE_CODES.has(s.code)) || scoped('phone'),
    mailbox: d.signals.some((s) => MAILBOX_CODES.has(s.code)) || scoped('email'),
  };
}

/** CAEP levels: ours has four, CAEP three. */
const CAEP_LEVEL: Record<string, string> = { low: 'LOW', elevated: 'MEDIUM', high: 'HIGH', critical: 'HIGH' };

export interface OutgoingEvent {
  readonly type: string;
  readonly event: Record<string, unknown>;
}

/**
 * The events a decision owes, given what was last sent for its identity (undefined: nothing yet,
 * which reads as low risk and nothing under suspicion). Empty when nothing a receiver learns from
 * changed, and for a decision older than the last one sent.
 */
export function eventsFor(previous: SentState | undefined, d: Decision): OutgoingEvent[] {
  if (previous !== undefined && d.sequence <= previous.sequence) return [];
  const now = sentStateOf(d);
  const at = Math.floor(Date.parse(d.computedAt) / 1000);
  const out: OutgoingEvent[] = [];
  const before = CAEP_LEVEL[previous?.risk ?? 'low'] ?? 'LOW';
  const after = CAEP_LEVEL[now.risk] ?? 'HIGH';
  if (before !== after)
    out.push({
      type: EVENT_TYPES.riskLevelChange,
      event: {
        principal: 'USER',
        current_level: after,
        previous_level: before,
        risk_reason: riskReason(d),
        event_timestamp: at,
      },
    });
  if (now.phone && !previous?.phone)
    out.push({
      type: EVENT_TYPES.credentialCompromise,
      event: { credential_type: 'phone-sms', event_timestamp: at },
    });
  if (now.mailbox && !previous?.mailbox)
    out.push({
      type: EVENT_TYPES.credentialCompromise,
      event: { credential_type: 'email', event_timestamp: at },
    });
  return out;
}

/** The signal codes behind the risk, upper-cased (`SIM_SWAP`, `MAILBOX_TAMPERED`), or `NONE`. */
function riskReason(d: Decision): string {
  const codes = [...new Set(d.signals.map((s) => s.code.toUpperCase()))].sort();
  return codes.length === 0 ? 'NONE' : codes.join(',').slice(0, 200);
}

/**
 * A deterministic `jti`: the same decision and event for the same stream is the same SET, so a
 * decision read twice (a redelivery) never gives a receiver two events.
 */
export function jtiOf(streamId: string, identityId: string, sequence: number, type: string): string {
  return createHash('sha256')
    .update(JSON.stringify([streamId, identityId, sequence, type]))
    .digest('base64url')
    .slice(0, 32);
}

/** Private signing keys, as JSON: an array of JWKs (RSA or EC) with `kid` and `alg`; the first signs. */
const PrivateJwk = z.looseObject({
  kty: z.enum(['RSA', 'EC']),
  kid: z.string().min(1).max(100),
  alg: z.enum(['RS256', 'PS256', 'ES256']),
  d: z.string().min(1),
});

export class SetSigner {
  readonly issuer: string;
  readonly #keys: Array<{ kid: string; alg: string; jwk: JWK }>;
  #signingKey: ReturnType<typeof importJWK> | undefined;

  /**
   * `keysJson`: the key that signs first, then keys still published (a rotation: publish the new
   * key second, then move it first, then drop the old one once receivers have refetched).
   */
  constructor(issuer: string, keysJson: string) {
    this.issuer = issuer;
    let raw: unknown;
    try {
      raw = JSON.parse(keysJson);
    } catch {
      throw new Error(
        'SSF_SIGNING_KEYS is not JSON: an array of private JWKs (npm run assurance -- ssf keys generate)',
      );
    }
    const parsed = z
      .array(PrivateJwk)
      .min(1)
      .safeParse(Array.isArray(raw) ? raw : [raw]);
    if (!parsed.success)
      throw new Error(
        `SSF_SIGNING_KEYS: every key needs kty RSA or EC, kid, alg (RS256, PS256, ES256) and its private part: ${parsed.error.issues[0]?.message}`,
      );
    const kids = new Set(parsed.data.map((k) => k.kid));
    if (kids.size !== parsed.data.length) throw new Error('SSF_SIGNING_KEYS: two keys share a kid');
    this.#keys = parsed.data.map((k) => ({ kid: k.kid, alg: k.alg, jwk: k as JWK }));
  }

  /** The JWKS to publish: the public part of every key. */
  jwks(): { keys: JWK[] } {
    return {
      keys: this.#keys.map(({ jwk, kid, alg }) => {
        const {
          d: _d,
          p: _p,
          q: _q,
          dp: _dp,
          dq: _dq,
          qi: _qi,
          oth: _oth,
          ...pub
        } = jwk as Record<string, unknown>;
        return { ...(pub as JWK), kid, alg, use: 'sig' };
      }),
    };
  }

  async sign(claims: {
    audience: string | string[];
    jti: string;
    txn: string;
    subject: Record<string, unknown>;
    event: OutgoingEvent;
    issuedAt?: number;
  }): Promise<string> {
    const first = this.#keys[0] as { kid: string; alg: string; jwk: JWK };
    this.#signingKey ??= importJWK(first.jwk, first.alg);
    return new SignJWT({
      jti: claims.jti,
      txn: claims.txn,
      sub_id: claims.subject,
      events: { [claims.event.type]: claims.event.event },
    })
      .setProtectedHeader({ alg: first.alg, kid: first.kid, typ: 'secevent+jwt' })
      .setIssuer(this.issuer)
      .setAudience(claims.audience)
      .setIssuedAt(claims.issuedAt ?? Math.floor(Date.now() / 1000))
      .sign(await this.#signingKey);
  }
}

/** A new RS256 signing key (2048 bits, as the SSF interoperability profile asks), as a private JWK. */
export async function generateSsfKey(): Promise<JWK> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', {
    extractable: true,
    modulusLength: 2048,
  });
  const pub = await exportJWK(publicKey);
  const kid = `ssf-${createHash('sha256').update(String(pub.n)).digest('base64url').slice(0, 12)}`;
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256' };
}
