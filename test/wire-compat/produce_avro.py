"""Produces events with confluent-kafka's own Avro serializer (Confluent wire format).

Reads one JSON object per line on stdin: {"topic": ..., "key": ..., "value": {...}}. The value
schema is the latest one registered under "<topic>-value"; nothing is auto-registered, as a
well-behaved producer in a governed cluster would do.
"""
import json
import sys

from confluent_kafka import SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import StringSerializer


def main() -> int:
    bootstrap, registry_url = sys.argv[1], sys.argv[2]
    registry = SchemaRegistryClient({"url": registry_url})
    producers: dict[str, SerializingProducer] = {}
    delivered: list[str] = []
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append(f"{msg.topic()}:{msg.partition()}:{msg.offset()}")

    for line in sys.stdin:
        if not line.strip():
            continue
        item = json.loads(line)
        topic = item["topic"]
        if topic not in producers:
            latest = registry.get_latest_version(f"{topic}-value")
            serializer = AvroSerializer(
                registry,
                latest.schema.schema_str,
                conf={"auto.register.schemas": False, "use.latest.version": True},
            )
            producers[topic] = SerializingProducer(
                {
                    "bootstrap.servers": bootstrap,
                    "key.serializer": StringSerializer("utf_8"),
                    "value.serializer": serializer,
                    "enable.idempotence": True,
                    "acks": "all",
                }
            )
        producers[topic].produce(topic=topic, key=item["key"], value=item["value"], on_delivery=on_delivery)
    for p in producers.values():
        p.flush(30)
    print(json.dumps({"delivered": delivered, "errors": errors}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
