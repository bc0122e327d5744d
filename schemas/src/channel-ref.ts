import { createHmac } from 'node:crypto';
import type { BindingRef } from './decision.ts';
import type { Channel } from './events/channel-binding.ts';

/**
 * The keyed hash that stands for a channel value everywhere outside the input topics (Redis keys,
 * decisions, logs). HMAC-SHA-256 with a deployment secret: without the secret, a phone number
 * cannot be confirmed by hashing candidates. Truncated to 128 bits, ample against collisions.
 * `kind` is part of the input so that a device id and an email cannot collide.
 */
export function channelRef(secret: string, kind: string, normalizedValue: string): string {
  return createHmac('sha256', secret).update(`${kind}:${normalizedValue}`).digest('hex').slice(0, 32);
}

/**
 * The binding a normalized channel stands for (what a decision's `acceptableOn` names), from the
 * `{type, value}` an app reports the user completed a step-up on. Parse the value with `Channel`
 * first: the same normalization as the events', or the hashes would never meet.
 */
export function bindingRefOf(secret: string, channel: Channel): BindingRef {
  return { channelType: channel.type, channelRef: channelRef(secret, channel.type, channel.value) };
}
