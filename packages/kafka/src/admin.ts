import { type KafkaClient, kafkajsOf } from './client.ts';
import type { AdminPort, TopicSpec } from './types.ts';

export async function createAdmin(kafka: KafkaClient): Promise<AdminPort> {
  const admin = kafkajsOf(kafka).admin();
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
              configEntries: Object.entries({ ...t.createConfigs, ...t.configs }).map(([name, value]) => ({
                name,
                value,
              })),
            })),
          });
        } catch (err) {
          // Another engine provisioning at the same time created them first: that is success.
          if (!/already exists/i.test((err as Error).message)) throw err;
        }
        await waitForLeaders(missing.map((t) => t.name));
      }
      // Existing topics keep their partitions; the configs the catalog names are brought to its
      // values. AlterConfigs replaces a topic's whole dynamic config, so what an operator set that
      // the catalog does not name (a retention or size override) is read first and kept.
      const present = topics.filter(
        (t) => existing.has(t.name) && t.configs && Object.keys(t.configs).length > 0,
      );
      if (present.length > 0) {
        const described = await admin.describeConfigs({
          includeSynonyms: false,
          resources: present.map((t) => ({ type: 2, name: t.name })),
        });
        const current = new Map(
          described.resources.map((r) => [
            r.resourceName,
            Object.fromEntries(
              r.configEntries
                .filter((e) => !e.isDefault && e.configSource === 1 /* DYNAMIC_TOPIC_CONFIG */)
                .map((e) => [e.configName, e.configValue]),
            ),
          ]),
        );
        const changed = present
          .map((t) => {
            const now = current.get(t.name) ?? {};
            const wanted = { ...now, ...t.configs };
            const same =
              Object.keys(wanted).length === Object.keys(now).length &&
              Object.entries(wanted).every(([k, v]) => now[k] === v);
            return same ? undefined : { name: t.name, configs: wanted };
          })
          .filter((c) => c !== undefined);
        if (changed.length > 0) {
          await admin.alterConfigs({
            validateOnly: false,
            resources: changed.map((c) => ({
              type: 2, // TOPIC
              name: c.name,
              configEntries: Object.entries(c.configs).map(([name, value]) => ({ name, value })),
            })),
          });
        }
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
    async positions(groupId, topics) {
      const ends = [];
      for (const topic of topics) ends.push({ topic, offsets: await admin.fetchTopicOffsets(topic) });
      const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
      const byKey = new Map<string, bigint>();
      for (const t of committed) {
        for (const p of t.partitions) byKey.set(`${t.topic}|${p.partition}`, BigInt(p.offset));
      }
      return ends.flatMap(({ topic, offsets }) =>
        offsets.map((p) => {
          const low = BigInt(p.low);
          const c = byKey.get(`${topic}|${p.partition}`) ?? -1n;
          return {
            topic,
            partition: p.partition,
            low,
            end: BigInt(p.high),
            committed: c < low ? low : c,
            stored: c < 0n ? null : c,
          };
        }),
      );
    },
    async setTopicConfigs(topic, configs) {
      // Merged with the topic's current dynamic configs, for the reason given in ensureTopics.
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: topic }],
      });
      const current = Object.fromEntries(
        (described.resources[0]?.configEntries ?? [])
          .filter((e) => !e.isDefault && e.configSource === 1)
          .map((e) => [e.configName, e.configValue]),
      );
      const merged = { ...current, ...configs };
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: 2, // TOPIC
            name: topic,
            configEntries: Object.entries(merged).map(([name, value]) => ({ name, value })),
          },
        ],
      });
    },
    async members(groupId) {
      const { groups } = await admin.describeGroups([groupId]);
      return groups[0]?.members.length ?? 0;
    },
    close: () => admin.disconnect(),
  };
}
