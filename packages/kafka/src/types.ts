/**
 * The project's own view of Kafka (STYLE.md: kafkajs is in maintenance mode; keep it behind a
 * small port so the client can be changed in one place). Nothing outside packages/kafka imports
 * kafkajs.
 */

export interface InboundMessage {
  readonly topic: string;
  readonly partition: number;
  /** Decimal string: offsets exceed 2^53 in principle. */
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  /** Broker or producer timestamp, ms since epoch. */
  readonly timestampMs: number;
}

export interface OutboundMessage {
  readonly topic: string;
  readonly key: string | Buffer | null;
  /** null is a tombstone on a compacted topic. */
  readonly value: Buffer | string | null;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Where a produced message landed: its partition and its offset there (decimal). */
export interface Landed {
  readonly partition: number;
  readonly offset: string;
}

export interface ProducerPort {
  /** Resolves once every message is acknowledged by all in-sync replicas. */
  send(messages: readonly OutboundMessage[]): Promise<void>;
  /** As `send`, and where each message landed (its partition, its offset there), in the order given. */
  sendWithOffsets?(messages: readonly OutboundMessage[]): Promise<Landed[]>;
  close(): Promise<void>;
}

/** What a batch handler may do while it works. */
export interface BatchControl {
  /** Keep group membership alive during long batches. */
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping or the partition was revoked: stop early, commit nothing more. */
  shouldContinue(): boolean;
}

/**
 * A handler's verdict on a batch: how many leading messages are durably done (their offsets may be
 * committed) and, if it stopped early because of a transient failure, how long to back off before
 * the rest is redelivered.
 */
export interface BatchResult {
  readonly processed: number;
  readonly retryAfterMs?: number;
  readonly reason?: string;
}

export type BatchHandler = (
  messages: readonly InboundMessage[],
  control: BatchControl,
) => Promise<BatchResult>;

export interface ConsumerOptions {
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly fromBeginning?: boolean;
  /** Partitions processed at the same time (each partition stays sequential). */
  readonly concurrency?: number;
  readonly sessionTimeoutMs?: number;
  readonly maxBytesPerPartition?: number;
  /** How long an idle fetch waits on the broker (bounds how long a stop takes). */
  readonly maxWaitTimeMs?: number;
  /**
   * Commit offsets in the background (the newest per partition, one request at a time, flushed by
   * `stop`) instead of awaiting a commit after every batch, which holds up the next fetch. For
   * consumers whose work is idempotent and that do not read their own committed offsets as a
   * signal (the topic client does: its freshness is the group's committed lag). Off by default.
   */
  readonly backgroundCommits?: boolean;
}

export interface ConsumerEvents {
  onGroupJoin?: (assigned: ReadonlyArray<{ topic: string; partitions: number[] }>) => void;
  /**
   * Awaited before a batch's offsets are committed; if it throws, nothing is committed and the
   * batch is redelivered (its work is idempotent). The engine records its progress in Redis here.
   */
  beforeCommit?: (done: { topic: string; partition: number; nextOffset: string }) => Promise<void>;
  /**
   * Asked after every assignment (and on `resync`): offsets to resume assigned partitions from,
   * instead of the committed ones, where a store lost what those offsets stand for. A batch that
   * begins past such an offset is not processed: the partition is moved back first.
   */
  resumeFrom?: (
    assigned: ReadonlyArray<{ topic: string; partitions: number[] }>,
  ) => Promise<ReadonlyArray<{ topic: string; partition: number; offset: string }>>;
  onCrash?: (error: Error, restarting: boolean) => void;
  onBatchDone?: (info: {
    topic: string;
    partition: number;
    processed: number;
    lag: number;
    nextOffset: string;
  }) => void;
}

export interface ConsumerPort {
  start(handler: BatchHandler): Promise<void>;
  /** Asks `resumeFrom` again for the partitions assigned now (the store changed under us). */
  resync(): void;
  /**
   * Commits the offsets queued by `backgroundCommits` now, and resolves once they are (or failed):
   * before comparing Kafka's committed offsets with progress recorded elsewhere.
   */
  flushCommits(): Promise<void>;
  /** Stops fetching, waits for the batch in flight, commits what it finished, leaves the group. */
  stop(): Promise<void>;
}

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  /** Unset: the cluster's `default.replication.factor`, which its operator set for its size. */
  readonly replicationFactor?: number;
  readonly configs?: Readonly<Record<string, string>>;
  /**
   * Configs given when the topic is created and never changed after (replication settings: an
   * engine that starts while brokers are down must not lower what the topic was created with).
   */
  readonly createConfigs?: Readonly<Record<string, string>>;
}

export interface PartitionPosition {
  readonly topic: string;
  readonly partition: number;
  readonly low: bigint;
  readonly end: bigint;
  readonly committed: bigint;
  /** The group's committed offset as Kafka holds it: null when the group has committed nothing there. */
  readonly stored: bigint | null;
}

export interface AdminPort {
  ensureTopics(topics: readonly TopicSpec[]): Promise<{ created: string[] }>;
  /** Deletes those of `names` that exist and returns them; an absent topic is not an error. */
  deleteTopics(names: readonly string[]): Promise<string[]>;
  /** Committed offset lag per partition for a group on a topic. */
  lag(groupId: string, topic: string): Promise<Array<{ partition: number; lag: number }>>;
  /**
   * For each partition of `topics`: its log start and end offsets and the group's committed offset
   * (the log start when the group has committed nothing), as decimal strings.
   */
  positions(groupId: string, topics: readonly string[]): Promise<PartitionPosition[]>;
  /** How many members a consumer group has now (0: nobody consumes). */
  members(groupId: string): Promise<number>;
  /** Sets configs of an existing topic (others keep their values). */
  setTopicConfigs(topic: string, configs: Readonly<Record<string, string>>): Promise<void>;
  close(): Promise<void>;
}
