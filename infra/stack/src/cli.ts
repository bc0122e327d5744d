/**
 * `npm run stack:up | stack:down | stack:status`: the native local stack (Kafka KRaft, Apicurio
 * Registry, Redis) on loopback, no Docker. See README "Local stack".
 */
import { exitOnStackProblem } from './problems.ts';
import { stackDown, stackStatus, stackUp } from './stack.ts';

const log = (msg: string) => process.stderr.write(`[stack] ${msg}\n`);

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case 'up': {
      const t0 = Date.now();
      const { endpoints, services } = await stackUp(log);
      const { provisionAll } = await import('./provision.ts');
      const p = await provisionAll(endpoints, log);
      for (const s of services) log(`${s.name.padEnd(9)} ${s.state.padEnd(8)} ${s.where}`);
      log(`provisioned ${p.topics} topics, ${p.subjects} schemas`);
      log(`stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      for (const [k, v] of Object.entries(endpoints)) process.stdout.write(`${k}=${v}\n`);
      return 0;
    }
    case 'down':
      await stackDown(log);
      return 0;
    case 'status': {
      const rows = await stackStatus();
      for (const r of rows) {
        const state = r.managed ? (r.pid ? (r.healthy ? 'up' : 'unhealthy') : 'down') : 'external';
        process.stdout.write(
          `${r.name.padEnd(9)} ${state.padEnd(10)} ${r.pid ? `pid ${r.pid}`.padEnd(11) : ''.padEnd(11)} ${r.where}\n`,
        );
      }
      return rows.every((r) => r.healthy) ? 0 : 3;
    }
    default:
      process.stderr.write('usage: cli.ts up|down|status\n');
      return 2;
  }
}

main(process.argv[2]).then((code) => process.exit(code), exitOnStackProblem('[stack]'));
