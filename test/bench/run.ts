/**
 * `npm run bench`: a realistic mix through the real stack (issue 4 item 8), printing figures. It
 * never fails a test and is not part of `npm test`.
 *
 * Phases, on one isolated namespace, consumer groups and Redis prefix:
 *   1. throughput: every identity's bindings, then the event mix, each produced at once in large
 *      batches; timed from the first send until every decision is out;
 *   2. raw: plain kafkajs consuming the same input events, for the ceiling and the ratio; then the
 *      floor pipeline (floor-pipeline.ts) on them: the least a pipeline of this shape must do;
 *   3. latency: a fresh mix offered at a fixed rate, event → decision percentiles;
 *   4. the read path: the HTTP API (a child process) under autocannon at a fixed rate, and the
 *      client library's topic view (load, heap per identity, lookup time);
 *   5. Redis memory per identity (taken after phase 1).
 * The engine runs as a child process (services/engine/src/main.ts) so its CPU is its own.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '@assurance/core';
import type { ProducerPort } from '@assurance/kafka';
import { createAdmin, createKafka, createProducer, parseBrokers, RegistryCodec } from '@assurance/kafka';
import { INPUT_ROLES, type TopicNames, topicNames } from '@assurance/schemas';
import { exitOnStackProblem, logTails, stackStatus } from '@assurance/stack';
import { Redis } from 'ioredis';
import { uniqueName } from '../src/harness.ts';
import { isolatedConfig } from '../src/pipeline.ts';
import { parseBenchArgs, USAGE } from './args.ts';
import { cpuBetween, snapshot } from './cpu.ts';
import type { EngineChild } from './engine-child.ts';
import { configEnv, freePort, histogramQuantiles, metricSum, startEngineChild } from './engine-child.ts';
import { floorPipeline } from './floor-pipeline.ts';
import type { DrainState, Encoded } from './pipeline-io.ts';
import {
  DecisionSink,
  encodeAll,
  pipelineLag,
  produceAll,
  produceAtRate,
  StallError,
  sampleSizes,
  waitDrained,
} from './pipeline-io.ts';
import { summariseProfiles } from './profile.ts';
import { progress } from './progress.ts';
import { rawConsume } from './raw-baseline.ts';
import { loadEndpoint, startApiChild, topicViewLookups } from './read-path.ts';
import {
  commandDelta,
  commandStats,
  identityFootprint,
  prefixMemory,
  unlinkPrefix,
  usedMemory,
} from './redis-usage.ts';
import type { LatencyResult, PhaseResult, Report } from './report.ts';
import { printReport } from './report.ts';
import type { BenchEvent } from './workload.ts';
import { bindings, countByRole, fanOut, identityId, mix } from './workload.ts';

const say = (m: string) => process.stderr.write(`[bench] ${m}\n`);

async function main(): Promise<void> {
  const parsed = parseBenchArgs(process.argv.slice(2));
  if (parsed === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const args = parsed;
  const runStart = performance.now();
  const metricsPort = await freePort();
  // The engine's production defaults for what the test harness shortens (partitions, sweeps, backoff).
  const config = await isolatedConfig({
    LOG_LEVEL: 'warn',
    INTERNAL_PARTITIONS: '6',
    SWEEP_INTERVAL: '1s',
    SWEEP_LEASE: '30s',
    RETRY_BACKOFF: '1s',
    ...args.env,
  });
  const topics: TopicNames = topicNames(config.TOPIC_NAMESPACE);
  // Silent: stdout carries the report; failures surface as exceptions, the engine logs to a file.
  const logger = createLogger('bench', 'silent');
  say(
    `namespace ${config.TOPIC_NAMESPACE}, groups ${config.ENGINE_GROUP_ID}.*, Redis prefix ${config.REDIS_PREFIX}`,
  );

  // Its Redis figures (INFO, MEMORY USAGE, SCAN) read one server; a cluster is measured by the chaos
  // and scale runs of npm run test:cluster.
  if (!config.REDIS_URL)
    throw new Error('npm run bench measures one Redis server: set REDIS_URL, not REDIS_CLUSTER_NODES');
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 3 });
  await redis.connect();
  const kafka = createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'bench', logger });
  const admin = await createAdmin(kafka);
  const stack = Object.fromEntries((await stackStatus()).map((s) => [s.name, s.pid]));
  const memBefore = await usedMemory(redis);
  const redisVer = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';

  let engine: EngineChild | undefined;
  let sink: DecisionSink | undefined;
  let producer: ProducerPort | undefined;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    say('cleaning up: consumers, engine, topics, Redis keys, registry subjects');
    await sink?.stop().catch(() => {});
    await producer?.close().catch(() => {});
    const code = await engine?.stop().catch(() => null);
    if (code !== undefined && code !== 0) say(`engine exited with code ${code}; see ${engine?.logFile}`);
    // One by one: a topic the engine never created must not keep the others alive.
    const left: string[] = [];
    let deleted = 0;
    for (const t of Object.values(topics)) {
      await admin.deleteTopics([t]).then(
        (d) => {
          deleted += d.length;
        },
        () => left.push(t),
      );
    }
    await admin.close().catch(() => {});
    const keys = await unlinkPrefix(redis, config.REDIS_PREFIX).catch(() => -1);
    say(`deleted ${deleted} topics and ${keys} Redis keys`);
    if (left.length > 0) say(`could not delete (is the broker unwell?): ${left.join(', ')}`);
    if (keys < 0)
      say(`could not delete Redis keys under ${config.REDIS_PREFIX} (SCAN + UNLINK them by hand)`);
    await deleteSubjects(config.SCHEMA_REGISTRY_URL, topics);
    await redis.quit().catch(() => redis.disconnect());
  };
  // Ctrl-C aborts the phase in progress; the finally below cleans up once.
  const interrupt = new AbortController();
  const interrupted = new Promise<never>((_, reject) => {
    interrupt.signal.addEventListener('abort', () => reject(interrupt.signal.reason));
  });
  interrupted.catch(() => {});
  process.once('SIGINT', () => {
    say('interrupted');
    process.exitCode = 130;
    interrupt.abort(new Error('interrupted'));
  });

  // Created only now that nothing can fail before the `finally` that deletes it.
  const workDir = mkdtempSync(join(tmpdir(), 'otp-bench-'));
  const engineLog = join(workDir, 'engine.log');
  say(`work dir ${workDir}`);
  let failed = false;
  try {
    say('starting the engine (child process)');
    engine = await startEngineChild({
      config,
      metricsPort,
      logFile: engineLog,
      ...(args.profile ? { cpuProfileDir: workDir } : {}),
    });
    const pids = { engine: engine.pid, kafka: stack.kafka, registry: stack.registry, redis: stack.redis };
    const published = async () =>
      metricSum(await (engine as EngineChild).metrics(), 'assurance_decisions_published_total');

    // Everything is generated and encoded before any clock starts.
    const nowMs = Date.now();
    // Each scale point binds the identities it adds, then runs a mix over all identities so far.
    const points = args.scalePoints.map((n, k) => ({
      n,
      bindings: bindings(n, nowMs, k === 0 ? 0 : (args.scalePoints[k - 1] as number)),
      mix: mix({
        identities: n,
        count: args.events,
        seed: args.seed + 100 * k,
        idPrefix: k === 0 ? 'm' : `m${k}`,
        fromMs: nowMs - 2 * 3_600_000,
        toMs: nowMs - 3_600_000,
      }),
    }));
    const bindingEvents = points.flatMap((pt) => pt.bindings);
    const mixEvents = points.flatMap((pt) => pt.mix);
    // One fresh mix per latency phase, with its own event ids (`l-<n>`, `l1-<n>`, …).
    const latencyPhases = args.rates.map((rate, i) => ({
      rate,
      prefix: i === 0 ? 'l' : `l${i}`,
      events: mix({
        identities: args.identities,
        count: rate * args.duration,
        seed: args.seed + 1 + 1000 * i,
        idPrefix: i === 0 ? 'l' : `l${i}`,
        fromMs: nowMs - 3_600_000,
        toMs: nowMs,
      }),
    }));
    const latencyEvents = latencyPhases.flatMap((ph) => ph.events);
    const codec = new RegistryCodec({ url: config.SCHEMA_REGISTRY_URL });
    const encStart = performance.now();
    const totalEvents = bindingEvents.length + mixEvents.length + latencyEvents.length;
    const encBar = progress('pre-encoding', totalEvents);
    let offset = 0;
    const enc = async (events: typeof mixEvents): Promise<Encoded> => {
      const base = offset;
      offset += events.length;
      return encodeAll(events, topics, codec, { update: (n) => encBar.update(base + n), finish: () => {} });
    };
    const encPoints: Array<{ n: number; bindings: Encoded; mix: Encoded }> = [];
    for (const pt of points)
      encPoints.push({ n: pt.n, bindings: await enc(pt.bindings), mix: await enc(pt.mix) });
    const inputCount = bindingEvents.length + mixEvents.length;
    const encLatency: Encoded[] = [];
    for (const ph of latencyPhases) encLatency.push(await enc(ph.events));
    encBar.finish();
    const encodeMs = performance.now() - encStart;
    const FAN = 1000;
    const fan = fanOut(FAN, nowMs);
    const encFanBinds = await encodeAll(fan.binds, topics, codec);
    const encFanSwap = await encodeAll([fan.swap], topics, codec);

    sink = await DecisionSink.start(kafka, topics, logger);
    producer = await createProducer(kafka);

    /** A producing promise that only ever rejects: its failure ends the wait. */
    const onlyFailure = (p: Promise<unknown>) => p.then(() => new Promise<never>(() => {}));
    const drain = (produced: () => boolean, onPoll: (st: DrainState) => void, producing: Promise<unknown>) =>
      waitDrained({
        admin,
        topics,
        groupId: config.ENGINE_GROUP_ID,
        sink: sink as DecisionSink,
        published,
        produced,
        onPoll,
        failed: Promise.race([(engine as EngineChild).exited, interrupted, onlyFailure(producing)]),
        stallMs: args.stall * 1000,
      });

    /** Produce everything (within the window), wait for every decision: phase 1. */
    const throughput = async (name: string, encoded: Encoded): Promise<PhaseResult> => {
      const n = encoded.messages.length;
      const s = sink as DecisionSink;
      const bar = progress(name, n);
      const before = s.count;
      const cmdA = await commandStats(redis);
      const cpuA = snapshot(pids);
      const t0 = performance.now();
      let producedAt = 0;
      let sent = 0;
      const producing = produceAll({
        producer: producer as ProducerPort,
        messages: encoded.messages,
        chunk: args.chunk,
        window: args.window,
        inFlight: async () => {
          const l = await pipelineLag(admin, topics, config.ENGINE_GROUP_ID);
          return l.routerLag + l.deciderLag;
        },
        onProgress: (k) => {
          sent = k;
        },
        signal: interrupt.signal,
      }).then(() => {
        producedAt = performance.now();
      });
      producing.catch(() => {}); // awaited below; a failure also surfaces there
      // The bar counts events the router has committed (sent minus its lag).
      const drained = await drain(
        () => producedAt > 0,
        (st) =>
          bar.update(
            Math.max(0, sent - st.routerLag),
            `decisions ${s.count - before}${producedAt ? '' : ` · producing ${sent}`}`,
          ),
        producing,
      );
      await producing;
      const cpuB = snapshot(pids);
      bar.finish();
      const cmdB = await commandStats(redis);
      return {
        name,
        events: n,
        decisions: s.count - before,
        produceMs: producedAt - t0,
        // Until the last decision arrived, or the last event was produced if that came later.
        wallMs: Math.max(s.lastArrival, producedAt) - t0,
        drainedMs: drained.at - t0,
        mismatch: drained.mismatch,
        cpu: cpuBetween(cpuA, cpuB),
        redisCommands: commandDelta(cmdA, cmdB),
      };
    };

    say(
      `phase 1: throughput (${bindingEvents.length} bindings and ${mixEvents.length} mix events, at ${args.scalePoints.length} scale point${args.scalePoints.length > 1 ? 's' : ''})`,
    );
    const phases: PhaseResult[] = [];
    const multi = encPoints.length > 1;
    for (const pt of encPoints) {
      const at = multi ? `@${pt.n.toLocaleString('en-US')}` : '';
      phases.push(await throughput(`bindings${at}`, pt.bindings));
      phases.push(await throughput(`mix${at}`, pt.mix));
    }

    const memAfter = await usedMemory(redis);
    say('Redis memory: MEMORY USAGE over the run prefix');
    const prefixMem = await prefixMemory(redis, config.REDIS_PREFIX, args.identities > 10_000 ? 10 : 1);
    const footprint = await identityFootprint(redis, config.REDIS_PREFIX, Date.now());

    say('phase 2: raw kafkajs consume of the same input events');
    const rawCount = inputCount;
    const rawBar = progress('raw kafkajs', rawCount);
    const rawCpuA = snapshot(pids);
    const raw = await rawConsume({
      brokers: parseBrokers(config.KAFKA_BROKERS),
      topics: INPUT_ROLES.map((r) => topics[r]),
      groupId: uniqueName('bench-raw'),
      expected: rawCount,
      concurrency: config.CONSUMER_CONCURRENCY,
      onProgress: (n) => rawBar.update(n),
    });
    const rawCpu = cpuBetween(rawCpuA, snapshot(pids));
    rawBar.finish();

    say('phase 2b: the floor pipeline on the same input events (consume, one Redis script, produce)');
    const floorBar = progress('floor pipeline', rawCount);
    const floorCpuA = snapshot(pids);
    const floor = await floorPipeline({
      brokers: parseBrokers(config.KAFKA_BROKERS),
      topics: INPUT_ROLES.map((r) => topics[r]),
      outputTopic: `${config.TOPIC_NAMESPACE}.bench-floor`,
      partitions: config.INTERNAL_PARTITIONS,
      groupId: uniqueName('bench-floor'),
      redis,
      keyPrefix: config.REDIS_PREFIX,
      expected: rawCount,
      concurrency: config.CONSUMER_CONCURRENCY,
      onProgress: (n) => floorBar.update(n),
    });
    const floorCpu = cpuBetween(floorCpuA, snapshot(pids));
    floorBar.finish();

    const latencyResults: LatencyResult[] = [];
    for (const [i, ph] of latencyPhases.entries()) {
      const encoded = encLatency[i] as Encoded;
      say(`phase 3${'abcdefgh'[i] ?? ''}: latency at ${ph.rate} ev/s for ${args.duration} s`);
      const offeredAt = new Float64Array(encoded.messages.length);
      const samples = (sink as DecisionSink).timeLatency(ph.prefix, offeredAt);
      const latBar = progress('latency', encoded.messages.length);
      const latMetricsA = await engine.metrics();
      const latCpuA = snapshot(pids);
      const latBefore = (sink as DecisionSink).count;
      let offeredDone = false;
      const offering = produceAtRate(
        producer as ProducerPort,
        encoded.messages,
        ph.rate,
        offeredAt,
        (n) => latBar.update(n, `decisions ${(sink as DecisionSink).count - latBefore}`),
        interrupt.signal,
      ).then((r) => {
        offeredDone = true;
        return r;
      });
      offering.catch(() => {}); // awaited below; a failure also surfaces there
      const latDrain = await drain(
        () => offeredDone,
        () => {},
        offering,
      );
      const offered = await offering;
      const latCpu = cpuBetween(latCpuA, snapshot(pids));
      // The phase's own histograms: later phases come after.
      const latMetricsB = await engine.metrics();
      latBar.finish();
      const perStage = (name: string) =>
        Object.fromEntries(
          (['router', 'decider'] as const).map((stage) => [
            stage,
            histogramQuantiles(latMetricsA, latMetricsB, name, [0.5, 0.99], { stage }),
          ]),
        );
      latencyResults.push({
        rate: ph.rate,
        offered: encoded.messages.length,
        offeredMs: offered.wallMs,
        sends: offered.sends,
        decisions: (sink as DecisionSink).count - latBefore,
        samplesMs: samples.latenciesMs,
        upstreamMs: samples.upstreamMs,
        downstreamMs: samples.downstreamMs,
        decidedEvents: samples.decidedEvents.size,
        drainedMs: latDrain.at - (offeredAt[0] ?? 0),
        cpu: latCpu,
        engineSeconds: histogramQuantiles(
          latMetricsA,
          latMetricsB,
          'assurance_event_to_decision_seconds',
          [0.5, 0.95, 0.99],
        ),
        inputWait: perStage('assurance_input_wait_seconds'),
        batchTime: perStage('assurance_batch_seconds'),
      });
    }

    say(`phase 3b: fan-out: one phone bound to ${FAN} identities, then a SIM swap on it`);
    const waitFor = async (done: () => boolean, what: string) => {
      const deadline = performance.now() + args.stall * 1000;
      while (!done()) {
        if (performance.now() > deadline) throw new Error(`fan-out: no ${what} within ${args.stall} s`);
        await sleep(2);
      }
    };
    const fanBase = (sink as DecisionSink).count;
    await (producer as ProducerPort).send(encFanBinds.messages);
    await waitFor(() => (sink as DecisionSink).count >= fanBase + FAN, `${FAN} bind decisions`);
    const fanWatch = (sink as DecisionSink).watchTrigger('fan-swap-0');
    const fanCpuA = snapshot(pids);
    const fanStart = performance.now();
    await (producer as ProducerPort).send(encFanSwap.messages);
    await waitFor(() => fanWatch.count >= FAN, `${FAN} decisions of the SIM swap`);
    const fanOutResult = {
      members: FAN,
      ms: fanWatch.lastAt - fanStart,
      cpu: cpuBetween(fanCpuA, snapshot(pids)),
    };

    say(`phase 4: the read path (HTTP API at ${args.readRate} req/s per endpoint; the client's topic view)`);
    const token = `bench-${randomBytes(18).toString('base64url')}`;
    const api = await startApiChild({
      env: configEnv(config),
      port: await freePort(),
      token,
      logFile: join(workDir, 'api.log'),
      ...(args.profile ? { cpuProfileDir: join(workDir, 'api-profile') } : {}),
    });
    const ids = Array.from({ length: args.identities }, (_, i) => identityId(i));
    let pick = 0;
    const nextId = () => ids[(pick++ * 7919) % ids.length] as string;
    const readSeconds = args.quick ? 5 : 10;
    const apiCpuA = snapshot({ ...pids, api: api.pid });
    // 8 keep-alive connections: with more, autocannon's pacing sends bursts that queue in the API.
    const load = { base: api.base, token, rate: args.readRate, seconds: readSeconds, connections: 8 };
    const getLoad = await loadEndpoint({
      ...load,
      name: 'GET /v1/identities/{id}/assurance?action=',
      request: () => ({
        method: 'GET',
        path: `/v1/identities/${encodeURIComponent(nextId())}/assurance?action=payout.change`,
      }),
    });
    const verifyLoad = await loadEndpoint({
      ...load,
      name: 'POST /v1/assurance/verify',
      request: () => ({
        method: 'POST',
        path: '/v1/assurance/verify',
        body: JSON.stringify({
          identityId: nextId(),
          action: 'payout.change',
          completed: { authenticator: 'passkey_device_bound' },
        }),
      }),
    });
    const apiCpu = cpuBetween(apiCpuA, snapshot({ ...pids, api: api.pid }));
    await api.stop();
    const view = await topicViewLookups({
      brokers: config.KAFKA_BROKERS,
      namespace: config.TOPIC_NAMESPACE,
      engineGroupId: config.ENGINE_GROUP_ID,
      identities: ids,
      lookups: Math.min(100_000, Math.max(20_000, ids.length)),
      action: 'payout.change',
    });

    const finalMetrics = await engine.metrics();
    const auditSizes = await sampleSizes(kafka, topics.audit, 5000, logger);
    await cleanup();
    const profile = args.profile ? summariseProfiles(workDir) : undefined;
    const apiProfile = args.profile ? summariseProfiles(join(workDir, 'api-profile')) : undefined;
    const log = readFileSync(engine.logFile, 'utf8');
    const report: Report = {
      startedAt: new Date(nowMs).toISOString(),
      machine: {
        cores: cpus().length,
        model: cpus()[0]?.model ?? 'unknown',
        memGiB: totalmem() / 2 ** 30,
        node: process.version,
        kernel: `${process.platform} ${release()}`,
        redis: redisVer,
        endpoints: `Kafka ${config.KAFKA_BROKERS}, registry ${config.SCHEMA_REGISTRY_URL}, Redis ${config.REDIS_URL}`,
      },
      params: {
        ...args,
        internalPartitions: config.INTERNAL_PARTITIONS,
        concurrency: config.CONSUMER_CONCURRENCY,
        engine: `child process: node services/engine/src/main.ts (pid ${engine.pid})`,
        engineEnv: Object.entries(args.env)
          .map(([k, v]) => `${k}=${v}`)
          .join(' '),
      },
      workload: {
        identities: args.identities,
        bindings: countBindings(bindingEvents),
        mix: countByRole(mixEvents),
        latency: countByRole(latencyEvents),
        encodeMs,
        bytes: encPoints.reduce((t, pt) => t + pt.bindings.bytes + pt.mix.bytes, sumOf(encLatency, 'bytes')),
        json: encPoints.reduce((t, pt) => t + pt.bindings.json + pt.mix.json, sumOf(encLatency, 'json')),
        avro: encPoints.reduce((t, pt) => t + pt.bindings.avro + pt.mix.avro, sumOf(encLatency, 'avro')),
      },
      phases,
      raw: { ...raw, cpu: rawCpu },
      floor: { ...floor, cpu: floorCpu },
      readPath: { get: getLoad, verify: verifyLoad, apiCpu, view },
      fanOut: fanOutResult,
      latency: latencyResults,
      memory: { before: memBefore, after: memAfter, prefix: prefixMem, footprint },
      sizes: {
        decisions: (sink as DecisionSink).count,
        decisionBytes: (sink as DecisionSink).decisionBytes,
        audits: auditSizes.messages,
        auditBytes: auditSizes.bytes,
      },
      engineMetrics: {
        published: metricSum(finalMetrics, 'assurance_decisions_published_total'),
        deadLetters: metricSum(finalMetrics, 'assurance_dead_letters_total'),
        unchanged: metricSum(finalMetrics, 'assurance_events_unchanged_total'),
        retries: metricSum(finalMetrics, 'assurance_processing_retries_total'),
        fanoutSum: metricSum(finalMetrics, 'assurance_channel_fanout_identities_sum'),
        fanoutCount: metricSum(finalMetrics, 'assurance_channel_fanout_identities_count'),
        loopLagP99: metricSum(finalMetrics, 'assurance_engine_nodejs_eventloop_lag_p99_seconds'),
        gcSeconds: metricSum(finalMetrics, 'assurance_engine_nodejs_gc_duration_seconds_sum'),
        heapMiB: metricSum(finalMetrics, 'assurance_engine_nodejs_heap_size_used_bytes') / 2 ** 20,
        logWarnings: log.split('\n').filter((l) => /"level":(40|50|60)/.test(l)).length,
        logFile: args.keepWorkDir ? engine.logFile : undefined,
      },
      profile,
      apiProfile,
      totalMs: performance.now() - runStart,
    };
    printReport(report);
  } catch (err) {
    failed = !interrupt.signal.aborted;
    if (err instanceof StallError && engine) {
      const digest = logDigest(engine.logFile);
      process.stdout.write(
        `\nbench stalled: ${err.message}\nmost frequent engine warnings/errors (${engine.logFile}):\n${digest}\n` +
          (args.window === 0
            ? 'every event was produced at once; --window 480 bounds the backlog (and so the engine batches)\n'
            : ''),
      );
      process.exitCode = 2;
      return;
    }
    if (interrupt.signal.aborted) return;
    throw err;
  } finally {
    try {
      await cleanup();
    } finally {
      dropWorkDir(workDir, args.keepWorkDir, failed ? engineLog : undefined);
    }
    say(`total run time ${((performance.now() - runStart) / 1000).toFixed(1)} s`);
  }
}

/**
 * The work folder (the engine's log, CPU profiles) is deleted unless --keep-work-dir, on every
 * path out of a run. After a failure the messages above point at the engine log: its last lines
 * are shown before it goes.
 */
function dropWorkDir(workDir: string, keep: boolean, failedEngineLog: string | undefined): void {
  if (keep) {
    say(`work dir kept: ${workDir}`);
    return;
  }
  if (failedEngineLog && existsSync(failedEngineLog))
    process.stderr.write(`${logTails([failedEngineLog])}\n`);
  rmSync(workDir, { recursive: true, force: true });
  say(`deleted work dir ${workDir} (--keep-work-dir keeps it)`);
}

/** The engine log's warn/error messages by frequency, with one example error each. */
function logDigest(file: string): string {
  const byMsg = new Map<string, { n: number; example: string }>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!/"level":(40|50|60)/.test(line)) continue;
    try {
      const j = JSON.parse(line) as {
        msg?: string;
        stage?: string;
        component?: string;
        error?: string | { message?: string; code?: string };
        err?: { message?: string };
      };
      const key = `${j.stage ?? j.component ?? '-'}: ${(j.msg ?? '?').replace(/\d+ms\b/, 'N ms')}`;
      const detail =
        j.err?.message ?? (typeof j.error === 'string' ? j.error : (j.error?.message ?? j.error?.code ?? ''));
      const e = byMsg.get(key) ?? { n: 0, example: detail.slice(0, 160) };
      e.n++;
      byMsg.set(key, e);
    } catch {
      // not JSON: ignore
    }
  }
  return [...byMsg]
    .sort((a, b) => b[1].n - a[1].n)
    .slice(0, 8)
    .map(([k, v]) => `  ${String(v.n).padStart(6)} × ${k}${v.example ? `\n           ${v.example}` : ''}`)
    .join('\n');
}

/** Bindings by channel type, for the report. */
function countBindings(events: readonly BenchEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) {
    const t = (e.value.channel as { type: string }).type;
    out[t] = (out[t] ?? 0) + 1;
  }
  return out;
}

/** Best effort: the registry keeps subjects of deleted topics otherwise (soft, then permanent delete). */
async function deleteSubjects(url: string, topics: TopicNames): Promise<void> {
  for (const t of Object.values(topics)) {
    const s = `${url}/subjects/${encodeURIComponent(`${t}-value`)}`;
    await fetch(s, { method: 'DELETE' }).catch(() => {});
    await fetch(`${s}?permanent=true`, { method: 'DELETE' }).catch(() => {});
  }
}

main()
  .catch(exitOnStackProblem('[bench]'))
  .catch((err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  });

function sumOf(encoded: readonly Encoded[], field: 'bytes' | 'json' | 'avro'): number {
  return encoded.reduce((t, e) => t + e[field], 0);
}
