import type { Decision, Tier } from '@assurance/schemas';

const TIERS: Tier[] = ['low', 'medium', 'high', 'critical'];
const tty = process.stdout.isTTY === true;
const paint = (code: number, s: string) => (tty ? `\u001b[${code}m${s}\u001b[0m` : s);
const OUTCOME_COLOR: Record<string, number> = { allow: 32, step_up: 33, hold: 35, deny: 31 };

/**
 * A decision as a person reads it: one line per tier, exclusions with their reason codes. `nth`:
 * its place among the decisions shown for the identity (sequences are times, not counts).
 */
export function renderDecision(d: Decision, nth: number, label = d.identityId): string {
  const lines = [
    `${paint(1, `${label} · decision ${nth}`)} · risk ${paint(1, d.riskLevel)} · policy ${d.policyVersion} · after ${d.trigger.topic} (${d.trigger.eventId})`,
  ];
  if (d.signals.length > 0) {
    lines.push(
      `  signals: ${d.signals.map((s) => `${s.code} on ${s.scope}${s.expiresAt ? ` until ${s.expiresAt.slice(0, 16).replace('T', ' ')}Z` : ''}`).join('; ')}`,
    );
  }
  for (const tier of TIERS) {
    const t = d.tiers[tier];
    const outcome = paint(OUTCOME_COLOR[t.outcome] ?? 0, t.outcome.toUpperCase().padEnd(7));
    const accept = t.enrolledAcceptable ?? t.acceptableAuthenticators;
    const parts = [`  ${tier.padEnd(8)} ${outcome}`];
    if (t.outcome === 'step_up') parts.push(`accept ${accept.join(', ') || '—'}`);
    if (t.outcome === 'hold' || t.outcome === 'deny')
      parts.push(`recovery ${t.recovery.allowed.join(', ') || 'none'}`);
    const flags = [
      t.requirePhishingResistant && 'phishing-resistant',
      t.requireLiveness && 'liveness',
      t.requireVerifiedCallback && 'verified callback',
    ].filter(Boolean);
    if (flags.length > 0) parts.push(`requires ${flags.join(' + ')}`);
    lines.push(parts.join(' · ').trimEnd());
    // On an allow tier nothing is asked, so exclusions there would only be noise.
    for (const e of t.outcome === 'allow' ? [] : t.excludedAuthenticators) {
      if (!e.reasons.some((r) => r.startsWith('baseline')))
        lines.push(`             ✗ ${e.authenticator} (${e.reasons.join(', ')})`);
    }
  }
  return lines.join('\n');
}
