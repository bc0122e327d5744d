import type { Kafka } from 'kafkajs';
import type { AdminPort, TopicSpec } from './types.ts';

export async function createAdmin(kafka: Kafka): Promise<AdminPort> {
  const admin = kafka.admin();
  await admin.connect();

  /** Until every partition of `topics` has a leader, tolerating the broker's propagation delay. */
  async function waitForLeaders(topics: string[], timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const { topics: meta } = await admin.fetchTopicMetadata({ topics });
        if (
          meta.length === topics.length &&
          meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))
        ) {
          return;
        }
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`topics without leaders after ${timeoutMs} ms: ${topics.join(', ')} (${String(last)})`);
  }
  return {
    async ensureTopics(topics: readonly TopicSpec[]) {
      const existing = new Set(await admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t.name));
      if (missing.length > 0) {
        try {
          await admin.createTopics({
            // kafkajs's own wait gives up on the UNKNOWN_TOPIC_OR_PARTITION a KRaft broker answers for a
            // moment after creation; we wait for leaders ourselves below.
            waitForLeaders: false,
            topics: missing.map((t) => ({
              topic: t.name,
              numPartitions: t.partitions,
              replicationFactor: t.replicationFactor ?? -1,
              configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
            })),
          });
        } catch (err) {
          // Another engine provisioning at the same time created them first: that is success.
          if (!/already exists/i.test((err as Error).message)) throw err;
        }
        await waitForLeaders(missing.map((t) => t.name));
      }
      // Existing topics keep their partitions; their configs are brought to what the catalog says.
      const present = topics.filter(
        (t) => existing.has(t.name) && t.configs && Object.keys(t.configs).length > 0,
      );
      if (present.length > 0) {
        await admin.alterConfigs({
          validateOnly: false,
          resources: present.map((t) => ({
            type: 2, // TOPIC
            name: t.name,
            configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
          })),
        });
      }
      return { created: missing.map((t) => t.name) };
    },
    async deleteTopics(names) {
      // kafkajs retries an absent topic's UNKNOWN_TOPIC_OR_PARTITION for its whole retry budget
      // (about 20 s per call): a cleanup after a run that never created its topics took minutes.
      const existing = new Set(await admin.listTopics());
      const present = names.filter((n) => existing.has(n));
      if (present.length > 0) await admin.deleteTopics({ topics: present });
      return present;
    },
    async lag(groupId, topic) {
      // One after the other: with Promise.all, a failure of one call would leave the other retrying
      // in the background past close(), holding the process open.
      const latest = await admin.fetchTopicOffsets(topic);
      const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
      const byPartition = new Map(
        (committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]),
      );
      return latest.map((p) => {
        const c = byPartition.get(p.partition) ?? -1n;
        const high = BigInt(p.high);
        const low = BigInt(p.low);
        const from = c < 0n ? low : c;
        return { partition: p.partition, lag: Number(high > from ? high - from : 0n) };
      });
    },
    close: () => admin.disconnect(),
  };
}
