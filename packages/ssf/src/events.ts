/**
 * The Security Event Token types this receiver knows (OpenID RISC 1.0, CAEP 1.0, SSF 1.0). A type
 * not listed here is acknowledged and recorded as ignored: a transmitter may send more than we ask
 * for, and refusing it would make it retry forever.
 */
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/';

export const EVENT_TYPES = {
  credentialCompromise: `${RISC}credential-compromise`,
  accountDisabled: `${RISC}account-disabled`,
  accountEnabled: `${RISC}account-enabled`,
  accountPurged: `${RISC}account-purged`,
  accountCredentialChangeRequired: `${RISC}account-credential-change-required`,
  identifierChanged: `${RISC}identifier-changed`,
  identifierRecycled: `${RISC}identifier-recycled`,
  recoveryActivated: `${RISC}recovery-activated`,
  recoveryInformationChanged: `${RISC}recovery-information-changed`,
  optOutInitiated: `${RISC}opt-out-initiated`,
  optOutCancelled: `${RISC}opt-out-cancelled`,
  sessionsRevoked: `${RISC}sessions-revoked`,
  sessionRevoked: `${CAEP}session-revoked`,
  tokenClaimsChange: `${CAEP}token-claims-change`,
  credentialChange: `${CAEP}credential-change`,
  assuranceLevelChange: `${CAEP}assurance-level-change`,
  deviceComplianceChange: `${CAEP}device-compliance-change`,
  riskLevelChange: `${CAEP}risk-level-change`,
  verification: `${SSF}verification`,
  streamUpdated: `${SSF}stream-updated`,
} as const;

export type EventTypeName = keyof typeof EVENT_TYPES;

const BY_URI = new Map<string, EventTypeName>(
  Object.entries(EVENT_TYPES).map(([name, uri]) => [uri, name as EventTypeName]),
);

/** The short name of a known event type URI, or undefined. */
export function eventTypeName(uri: string): EventTypeName | undefined {
  return BY_URI.get(uri);
}
