"""Dead letters: a consumed record that cannot be used, kept whole, with where it came from and why."""

from __future__ import annotations

from collections.abc import Sequence

from app.wire.headers import (
    DLQ_ERROR_HEADER,
    DLQ_SOURCE_OFFSET_HEADER,
    DLQ_SOURCE_PARTITION_HEADER,
    DLQ_SOURCE_TOPIC_HEADER,
    Headers,
)


def dead_letter_headers(
    original: Sequence[tuple[str, bytes | None]] | None, topic: str, partition: int, offset: int, error: str
) -> Headers:
    """The original headers, then the source topic, partition and offset and the error, as UTF-8 values."""
    headers: Headers = list(original or [])
    headers += [
        (DLQ_SOURCE_TOPIC_HEADER, topic.encode()),
        (DLQ_SOURCE_PARTITION_HEADER, str(partition).encode()),
        (DLQ_SOURCE_OFFSET_HEADER, str(offset).encode()),
        (DLQ_ERROR_HEADER, error[:500].encode()),
    ]
    return headers
