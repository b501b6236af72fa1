"""The record headers: the name of every Kafka header the project writes or reads, each written once.

Values are UTF-8 bytes. The ``x-datagen-*`` headers, written by the generator and the agents, let a consumer count
what it reads against the truth topic and tell the stock requests apart; the dead-letter headers (``x-dlq-*``) say
where a dead letter came from and why.
"""

from __future__ import annotations

#: Written by the generator (agents/generation.py) on each deliberately bad record: its kind, e.g. b"undecodable".
BAD_RECORD_HEADER = "x-datagen-bad-record"
#: Written by the generator on the second copy of a record sent twice on purpose (P_DUPLICATE): always b"1".
DUPLICATE_HEADER = "x-datagen-duplicate"
#: The duplicate header as the generator writes it, name and value.
DUPLICATE: tuple[str, bytes] = (DUPLICATE_HEADER, b"1")
#: Written by the generation shard (agents/truth.py) on every record it emits: the shard number, ASCII digits.
SHARD_HEADER = "x-datagen-shard"
#: Written by the agents (agents/derived_truth.py) on every record they derive: ``<agent>:<incarnation>``.
SOURCE_HEADER = "x-datagen-source"
#: Written on each stock request (agents/requests.py): its kind, order, change, opening or due (none: change).
REQUEST_KIND_HEADER = "x-datagen-request"

#: Written on every dead letter (app/dead_letters.py): the topic the record was consumed from.
DLQ_SOURCE_TOPIC_HEADER = "x-dlq-source-topic"
#: Written on every dead letter: the partition the record was consumed from, ASCII digits.
DLQ_SOURCE_PARTITION_HEADER = "x-dlq-source-partition"
#: Written on every dead letter: the offset the record was consumed from, ASCII digits.
DLQ_SOURCE_OFFSET_HEADER = "x-dlq-source-offset"
#: Written on every dead letter: why the record could not be used (at most 500 characters).
DLQ_ERROR_HEADER = "x-dlq-error"
#: The dead-letter headers, in the order they follow the record's own headers.
DLQ_HEADERS = (DLQ_SOURCE_TOPIC_HEADER, DLQ_SOURCE_PARTITION_HEADER, DLQ_SOURCE_OFFSET_HEADER, DLQ_ERROR_HEADER)

#: Record headers as the producer takes them: (name, value) pairs.
Headers = list[tuple[str, str | bytes | None]]
