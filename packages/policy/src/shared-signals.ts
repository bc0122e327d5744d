import { SEVERITIES, SIGNAL_KINDS } from '@assurance/schemas';
import { z } from 'zod';
import { Duration } from './schema-parts.ts';

/**
 * The `sharedSignals` section: which received Security Event Token becomes which compromise signal
 * (docs/shared-signals.md). The evaluator never reads it; the API's receiver does, in order: the
 * first rule whose event and condition match applies. Event names are the receiver's short names
 * (`credentialCompromise`, `riskLevelChange`, ...); the receiver refuses to start on one it does not
 * know. A policy without the section uses the receiver's built-in table, which the default policy
 * spells out.
 */
const Family = z.string().regex(/^[a-z0-9-]{1,40}$/, 'a family is 1 to 40 of a-z, 0-9 and "-"');

export const MappingRuleSchema = z
  .strictObject({
    event: z.string().regex(/^[a-zA-Z]{1,60}$/, 'an event name such as credentialCompromise'),
    when: z
      .strictObject({
        field: z.string().regex(/^[a-z_]{1,60}$/),
        in: z.array(z.string().min(1).max(100)).min(1),
      })
      .optional(),
    raise: z
      .strictObject({
        kind: z.enum(SIGNAL_KINDS),
        severity: z.enum(SEVERITIES),
        ttl: Duration,
        /** One signal per subject for the family, replaced by the next event of it. */
        family: Family.optional(),
      })
      .optional(),
    /** The family whose signal this event clears, when the transmitter may clear. */
    clears: Family.optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.raise === undefined) === (r.clears === undefined))
      ctx.addIssue({ code: 'custom', message: 'a rule either raises a signal or clears a family' });
  })
  .transform(({ raise, when, ...rest }) => ({
    ...rest,
    ...(when === undefined ? {} : { when: { field: when.field, in: when.in.map((v) => v.toLowerCase()) } }),
    ...(raise === undefined
      ? {}
      : {
          raise: {
            kind: raise.kind,
            severity: raise.severity,
            ttlMs: raise.ttl,
            ...(raise.family === undefined ? {} : { family: raise.family }),
          },
        }),
  }));

export const SharedSignalsSchema = z.strictObject({
  mapping: z.array(MappingRuleSchema).min(1).optional(),
  /**
   * While a transmitter's stream is not known to be healthy (paused, disabled, unread, unverified),
   * the tiers from this one up fail closed: what it would have told us is unknown. `never`: no
   * effect. A transmitter's own `whenUnavailable` in SSF_TRANSMITTERS_FILE overrides it; `high` when
   * neither says.
   */
  whenUnavailable: z.enum(['low', 'medium', 'high', 'critical', 'never']).optional(),
});
export type SharedSignalsSettings = z.output<typeof SharedSignalsSchema>;
