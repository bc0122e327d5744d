import { parseArgs } from 'node:util';
import { loadTransmitters, type Transmitter, TransmittersFileError } from './config.ts';
import { EVENT_TYPES } from './events.ts';
import { DEFAULT_MAPPING } from './mapping.ts';
import {
  DELIVERY_POLL,
  DELIVERY_PUSH,
  StreamApiError,
  StreamClient,
  type StreamConfiguration,
} from './stream-client.ts';
import { generateSsfKey } from './transmit.ts';

/**
 * `assurance ssf ...`: our streams at the transmitters of SSF_TRANSMITTERS_FILE, through their
 * stream-management APIs (each transmitter's `managementToken`).
 */

export const SSF_USAGE = `usage: assurance ssf <command>
  streams [--json]                               every transmitter's stream for us, with its status
  create <transmitter> (--push <url> | --poll)   create (or update) our stream, asking for the mapped events
  status <transmitter> <stream-id> [enabled|paused|disabled] [--reason <text>]
  delete <transmitter> <stream-id>
  add-subject <transmitter> <stream-id> <subject-json>
  remove-subject <transmitter> <stream-id> <subject-json>
  verify <transmitter> <stream-id> [<state>]     ask for a verification event
  keys generate                                  a new RS256 signing key for SSF_SIGNING_KEYS (our transmitter)
SSF_TRANSMITTERS_FILE names the transmitters (docs/shared-signals.md).`;

/** The event types our mapping turns into signals: what a stream asks for. */
export function requestedEvents(): string[] {
  return [...new Set(DEFAULT_MAPPING.map((r) => EVENT_TYPES[r.event]))];
}

interface Io {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

export async function ssfMain(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  io: Io = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) },
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      push: { type: 'string' },
      poll: { type: 'boolean', default: false },
      reason: { type: 'string' },
      'push-token': { type: 'string' },
    },
  });
  const [command, name, streamId, extra] = positionals;
  if (command === undefined) {
    io.err(SSF_USAGE);
    return 2;
  }
  if (command === 'keys') {
    if (name !== 'generate') {
      io.err(SSF_USAGE);
      return 2;
    }
    // A JSON array, as SSF_SIGNING_KEYS takes it: put a new key second to publish it, then first.
    io.out(JSON.stringify([await generateSsfKey()]));
    return 0;
  }
  if (!env.SSF_TRANSMITTERS_FILE) {
    io.err('SSF_TRANSMITTERS_FILE is not set: it names the transmitters (docs/shared-signals.md)');
    return 2;
  }
  let transmitters: Transmitter[];
  try {
    transmitters = loadTransmitters(env.SSF_TRANSMITTERS_FILE, env);
  } catch (err) {
    if (err instanceof TransmittersFileError) {
      io.err(err.message);
      return 2;
    }
    throw err;
  }
  const clientFor = (t: Transmitter) => {
    if (!t.managementToken)
      throw new StreamApiError(`${t.name} has no managementToken in the transmitters file`);
    return new StreamClient({ issuer: t.issuer, token: t.managementToken });
  };
  const named = () => {
    const t = transmitters.find((x) => x.name === name);
    if (!t) throw new StreamApiError(`no transmitter "${name ?? ''}" in ${env.SSF_TRANSMITTERS_FILE}`);
    return t;
  };
  const needStream = () => {
    if (!streamId) throw new StreamApiError(`the stream id is missing\n${SSF_USAGE}`);
    return streamId;
  };
  try {
    switch (command) {
      case 'streams': {
        const rows = [];
        for (const t of transmitters) {
          if (!t.managementToken) {
            rows.push({ transmitter: t.name, stream: null, note: 'no managementToken' });
            continue;
          }
          try {
            const client = clientFor(t);
            const found = await client.getStream();
            const list = Array.isArray(found) ? found : [found];
            if (list.length === 0) rows.push({ transmitter: t.name, stream: null, note: 'no stream' });
            for (const s of list) {
              const status = await client.status(s.stream_id);
              rows.push({
                transmitter: t.name,
                stream: summary(s),
                status: status.status,
                reason: status.reason,
              });
            }
          } catch (err) {
            rows.push({ transmitter: t.name, stream: null, note: (err as Error).message });
          }
        }
        if (values.json) io.out(JSON.stringify(rows, null, 2));
        else
          for (const r of rows)
            io.out(
              r.stream === null
                ? `${r.transmitter}\t-\t${'note' in r ? r.note : ''}`
                : `${r.transmitter}\t${r.stream.stream_id}\t${'status' in r ? r.status : ''}\t${r.stream.delivery}\t${r.stream.events_delivered} event types delivered`,
            );
        return 0;
      }
      case 'create': {
        const t = named();
        if (Boolean(values.push) === values.poll) throw new StreamApiError('say --push <url> or --poll');
        const pushToken = values['push-token'] ?? t.pushToken;
        const delivery = values.push
          ? {
              method: DELIVERY_PUSH,
              endpoint_url: values.push,
              ...(pushToken ? { authorization_header: `Bearer ${pushToken}` } : {}),
            }
          : { method: DELIVERY_POLL };
        const s = await clientFor(t).createStream({
          events_requested: requestedEvents(),
          delivery,
          description: 'otp-assurance: compromise signals',
        });
        io.out(JSON.stringify(s, null, 2));
        const missing = requestedEvents().filter((e) => !(s.events_delivered ?? []).includes(e));
        if (missing.length > 0) io.err(`the transmitter does not deliver: ${missing.join(', ')}`);
        return 0;
      }
      case 'status': {
        const t = named();
        const id = needStream();
        const client = clientFor(t);
        if (extra === undefined) {
          io.out(JSON.stringify(await client.status(id)));
          return 0;
        }
        if (!['enabled', 'paused', 'disabled'].includes(extra))
          throw new StreamApiError(`a status is enabled, paused or disabled, not "${extra}"`);
        io.out(JSON.stringify(await client.setStatus(id, extra as 'enabled', values.reason)));
        return 0;
      }
      case 'delete':
        await clientFor(named()).deleteStream(needStream());
        io.out('deleted');
        return 0;
      case 'add-subject':
      case 'remove-subject': {
        const t = named();
        const id = needStream();
        let subject: unknown;
        try {
          subject = JSON.parse(extra ?? '');
        } catch {
          throw new StreamApiError(
            'the subject must be JSON, e.g. {"format":"email","email":"a@example.com"}',
          );
        }
        if (typeof subject !== 'object' || subject === null)
          throw new StreamApiError('the subject must be a JSON object');
        const client = clientFor(t);
        if (command === 'add-subject') await client.addSubject(id, subject as Record<string, unknown>);
        else await client.removeSubject(id, subject as Record<string, unknown>);
        io.out('done');
        return 0;
      }
      case 'verify':
        await clientFor(named()).requestVerification(needStream(), extra ?? `cli-${Date.now()}`);
        io.out('verification requested');
        return 0;
      default:
        io.err(SSF_USAGE);
        return 2;
    }
  } catch (err) {
    if (err instanceof StreamApiError) {
      io.err(err.message);
      return 1;
    }
    throw err;
  }
}

function summary(s: StreamConfiguration) {
  return {
    stream_id: s.stream_id,
    delivery:
      s.delivery?.method === DELIVERY_PUSH
        ? 'push'
        : s.delivery?.method === DELIVERY_POLL
          ? 'poll'
          : 'unknown',
    events_delivered: (s.events_delivered ?? []).length,
  };
}
