import type { EngineLagMonitor } from './engine-lag.ts';
import type { Readiness } from './schemas.ts';

/** What /readyz checks, as functions, so tests can point each one at a real (or stopped) service. */
export interface ReadinessDeps {
  /** Resolves when Redis answers PING. */
  readonly pingRedis: () => Promise<void>;
  /** Resolves when the schema registry answers. */
  readonly pingRegistry: () => Promise<void>;
  readonly lag: Pick<EngineLagMonitor, 'status' | 'lastError'>;
  readonly maxLag: number;
}

async function check(probe: () => Promise<void>, okDetail: string): Promise<{ ok: boolean; detail: string }> {
  try {
    await probe();
    return { ok: true, detail: okDetail };
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Ready means every answer can be fresh: Kafka reachable (the background lag measurement is
 * current), Redis and the registry answering, and the engine within the lag bound.
 */
export async function readiness(deps: ReadinessDeps): Promise<Readiness> {
  const status = deps.lag.status();
  const [redis, registry] = await Promise.all([
    check(deps.pingRedis, 'PING answered'),
    check(deps.pingRegistry, 'registry answered'),
  ]);
  const error = deps.lag.lastError ? `; last error: ${deps.lag.lastError}` : '';
  const kafka =
    status.state === 'unknown'
      ? {
          ok: false,
          detail: `no current lag measurement (${status.ageMs === null ? 'never measured' : `last ${status.ageMs} ms ago`}${error})`,
        }
      : { ok: true, detail: `lag measured ${status.ageMs} ms ago` };
  const engineLag =
    status.state === 'unknown'
      ? { ok: false, detail: 'engine lag unknown' }
      : {
          ok: status.state === 'ok',
          detail: `${status.lag} messages behind (bound ${deps.maxLag})`,
        };
  const checks = { kafka, redis, registry, engineLag };
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
