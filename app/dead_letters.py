"""Dead letters: a consumed record that cannot be used, kept whole, with where it came from and why."""

from __future__ import annotations

from collections.abc import Sequence

#: Headers added to every dead letter, after the record's own headers.
SOURCE_TOPIC = "x-dlq-source-topic"
SOURCE_PARTITION = "x-dlq-source-partition"
SOURCE_OFFSET = "x-dlq-source-offset"
ERROR = "x-dlq-error"

Headers = list[tuple[str, str | bytes | None]]


def dead_letter_headers(
    original: Sequence[tuple[str, bytes | None]] | None, topic: str, partition: int, offset: int, error: str
) -> Headers:
    """The original headers, then the source topic, partition and offset and the error, as UTF-8 values."""
    headers: Headers = list(original or [])
    headers += [
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (ERROR, error[:500].encode()),
    ]
    return headers
