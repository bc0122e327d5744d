import type { EngineHealth } from '@assurance/kafka';
import { describeHealth } from './engine-health.ts';
import type { Readiness } from './schemas.ts';

/** What /readyz checks, as functions, so tests can point each one at a real (or stopped) service. */
export interface ReadinessDeps {
  /** Resolves when Redis answers PING. */
  readonly pingRedis: () => Promise<void>;
  /** Resolves when the schema registry answers. */
  readonly pingRegistry: () => Promise<void>;
  /** Resolves (with a detail) when the store may be answered from: fingerprint, verified, complete, same policy. */
  readonly checkStore: () => Promise<string>;
  readonly engine: { health(): EngineHealth };
}

async function check(
  probe: () => Promise<unknown>,
  okDetail: string,
): Promise<{ ok: boolean; detail: string }> {
  try {
    const detail = await probe();
    return { ok: true, detail: typeof detail === 'string' ? detail : okDetail };
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Ready means every answer can be fresh: Kafka reachable (the background offset sample is current),
 * Redis and the registry answering, and the engine neither stalled nor beyond its lag bound, with a
 * consumer in each stage.
 */
export async function readiness(deps: ReadinessDeps): Promise<Readiness> {
  const health = deps.engine.health();
  const [redis, registry, store] = await Promise.all([
    check(deps.pingRedis, 'PING answered'),
    check(deps.pingRegistry, 'registry answered'),
    check(deps.checkStore, 'store verified'),
  ]);
  const kafka =
    health.state === 'unknown'
      ? { ok: false, detail: describeHealth(health) }
      : { ok: true, detail: `offsets sampled ${health.ageMs} ms ago` };
  const engine = {
    ok: health.state === 'ok' && Object.values(health.members).every((n) => n > 0),
    detail: describeHealth(health),
  };
  const checks = { kafka, redis, store, registry, engine };
  const ready = Object.values(checks).every((c) => c.ok);
  return { status: ready ? 'ready' : 'not_ready', checks };
}

/** A registry probe: GET `<url>/subjects` within `timeoutMs`, user-info sent as basic auth. */
export function registryPinger(registryUrl: string, timeoutMs = 2000): () => Promise<void> {
  const url = new URL(registryUrl);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (url.username) {
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  const target = `${url.toString().replace(/\/+$/, '')}/subjects`;
  return async () => {
    const res = await fetch(target, { headers, signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`registry answered ${res.status}`);
  };
}
