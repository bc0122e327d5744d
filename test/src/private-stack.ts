import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { LocalService, StackEndpoints, StackLayout } from '@assurance/stack';
import {
  kafka,
  REPO_ROOT,
  redis,
  registry,
  resolveLayout,
  stackDown,
  stackUp,
  stopService,
} from '@assurance/stack';
import { pollUntil } from './wait.ts';

/** Resolves once `pid` is gone (it is not our child, so no exit event tells us). */
async function exited(pid: number): Promise<void> {
  await pollUntil(
    async () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    },
    60_000,
    () => `pid ${pid} to exit`,
    50,
  );
}

/**
 * A second native stack on its own ports and folder, for tests that stop, crash and restart
 * services: breaking the shared stack would break every other test running beside them.
 */
export class PrivateStack {
  readonly layout: StackLayout;
  endpoints: StackEndpoints | undefined;
  readonly #log = (m: string) => process.stderr.write(`[private-stack] ${m}\n`);

  constructor(name: string, portBase: number) {
    const env: NodeJS.ProcessEnv = { ...process.env };
    // The shared stack's endpoints (exported by npm test) must not leak into this one.
    delete env.KAFKA_BROKERS;
    delete env.SCHEMA_REGISTRY_URL;
    delete env.REDIS_URL;
    this.layout = resolveLayout({
      ...env,
      STACK_DIR: path.join(REPO_ROOT, '.stack', name),
      STACK_KAFKA_PORT: String(portBase + 92),
      STACK_KAFKA_CONTROLLER_PORT: String(portBase + 93),
      STACK_KAFKA_SECURE_PORT: String(portBase + 94),
      STACK_KAFKA_MTLS_PORT: String(portBase + 95),
      STACK_REGISTRY_PORT: String(portBase + 81),
      STACK_REDIS_PORT: String(portBase + 79),
      STACK_KAFKA_HEAP: '512m',
    });
  }

  async up(): Promise<StackEndpoints> {
    const { endpoints } = await stackUp(this.#log, this.layout);
    this.endpoints = endpoints;
    return endpoints;
  }

  /** Graceful stop (SIGTERM), as an orchestrator would do. */
  stop(service: LocalService): Promise<boolean> {
    return stopService(service, this.layout);
  }

  /** SIGKILL: no flush, no goodbye. Resolves once the process is gone. */
  async crash(service: LocalService): Promise<void> {
    const pid = Number(readFileSync(service.pidFile(this.layout), 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    await exited(pid);
  }

  async start(service: LocalService): Promise<void> {
    await service.ensure(this.layout, this.#log);
  }

  down(): Promise<void> {
    return stackDown(this.#log, this.layout);
  }

  static readonly kafka = kafka;
  static readonly registry = registry;
  static readonly redis = redis;
}
