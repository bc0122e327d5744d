import { type AssuranceClient, createAssuranceClient, parsePublicKeys } from '@assurance/client';
import { buildApp } from './app.ts';

/**
 * Runs the example. Environment:
 * - `ASSURANCE_MODE`: `http` (default) or `topic`;
 * - http: `ASSURANCE_URL` (default `http://127.0.0.1:8080`), `ASSURANCE_TOKEN` (required);
 * - topic: `KAFKA_BROKERS` and `DECISION_PUBLIC_KEYS` (required: the engines' public keys, a JWK or
 *   a JWK set as JSON), `TOPIC_NAMESPACE` and `ENGINE_GROUP_ID` (optional, as the engine's);
 * - `PORT` (default 3000), `HOST` (default 127.0.0.1).
 */
function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`app-gate: ${name} is required\n`);
    process.exit(2);
  }
  return value;
}

function clientFromEnv(): AssuranceClient {
  const mode = process.env.ASSURANCE_MODE ?? 'http';
  if (mode === 'topic') {
    return createAssuranceClient({
      mode: 'topic',
      brokers: required('KAFKA_BROKERS'),
      decisionKeys: parsePublicKeys(required('DECISION_PUBLIC_KEYS')),
      ...(process.env.TOPIC_NAMESPACE ? { namespace: process.env.TOPIC_NAMESPACE } : {}),
      ...(process.env.ENGINE_GROUP_ID ? { engineGroupId: process.env.ENGINE_GROUP_ID } : {}),
    });
  }
  if (mode !== 'http') {
    process.stderr.write(`app-gate: ASSURANCE_MODE must be http or topic, got "${mode}"\n`);
    process.exit(2);
  }
  return createAssuranceClient({
    mode: 'http',
    baseUrl: process.env.ASSURANCE_URL ?? 'http://127.0.0.1:8080',
    token: required('ASSURANCE_TOKEN'),
  });
}

const client = clientFromEnv();
// Topic mode: serve only once the view has read the topic (crash, don't limp, if it cannot).
await client.ready({ timeoutMs: 60_000 });
const app = buildApp({ client, logger: true });
await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' });

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    await app.close();
    await client.close();
  });
}
