"""A producer outside this project: librdkafka through confluent-kafka, with its own Avro serializer.

Reads one JSON object per line on stdin:
  {"topic": ..., "key": ..., "value": {...}, "encoding": "avro" | "json" | "raw",
   "compression": "none" | "gzip" | "snappy" | "lz4" | "zstd", "raw_b64": "..."}
`avro` (the default) serializes `value` with the latest schema registered under "<topic>-value"
(Confluent wire format; nothing is auto-registered, as a governed producer would behave); `json`
sends `value` as JSON text; `raw` sends the bytes of `raw_b64` as they are. Prints one JSON line:
{"delivered": [...], "errors": [...]}.
"""
import base64
import json
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main() -> int:
    bootstrap, registry_url = sys.argv[1], sys.argv[2]
    registry = SchemaRegistryClient({"url": registry_url})
    serializers: dict[str, AvroSerializer] = {}
    producers: dict[str, Producer] = {}
    delivered: list[str] = []
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append(f"{msg.topic()}:{msg.partition()}:{msg.offset()}")

    def producer(compression: str) -> Producer:
        if compression not in producers:
            producers[compression] = Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "enable.idempotence": True,
                    "acks": "all",
                    "compression.type": compression,
                    # One batch per flush: the codec then covers every record sent together.
                    "linger.ms": 50,
                    # The broker limits compressed batches; tests send values larger than that
                    # uncompressed on purpose.
                    "message.max.bytes": 10_000_000,
                }
            )
        return producers[compression]

    def avro(topic: str, value) -> bytes:
        if topic not in serializers:
            latest = registry.get_latest_version(f"{topic}-value")
            serializers[topic] = AvroSerializer(
                registry,
                latest.schema.schema_str,
                conf={"auto.register.schemas": False, "use.latest.version": True},
            )
        return serializers[topic](value, SerializationContext(topic, MessageField.VALUE))

    for line in sys.stdin:
        if not line.strip():
            continue
        item = json.loads(line)
        topic = item["topic"]
        encoding = item.get("encoding", "avro")
        if encoding == "avro":
            payload = avro(topic, item["value"])
        elif encoding == "json":
            payload = json.dumps(item["value"]).encode("utf-8")
        else:
            payload = base64.b64decode(item["raw_b64"])
        key = item.get("key")
        producer(item.get("compression", "none")).produce(
            topic=topic,
            key=None if key is None else key.encode("utf-8"),
            value=payload,
            on_delivery=on_delivery,
        )
    for p in producers.values():
        p.flush(30)
    print(json.dumps({"delivered": delivered, "errors": errors}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
