import { createHmac } from 'node:crypto';

/**
 * The keyed hash that stands for a channel value everywhere outside the input topics (Redis keys,
 * decisions, logs). HMAC-SHA-256 with a deployment secret: without the secret, a phone number
 * cannot be confirmed by hashing candidates. Truncated to 128 bits, ample against collisions.
 * `kind` is part of the input so that a device id and an email cannot collide.
 */
export function channelRef(secret: string, kind: string, normalizedValue: string): string {
  return createHmac('sha256', secret).update(`${kind}:${normalizedValue}`).digest('hex').slice(0, 32);
}
