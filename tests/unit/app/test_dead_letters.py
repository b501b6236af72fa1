"""Dead-letter headers keep the original ones and say where the record came from and why."""

from app.dead_letters import dead_letter_headers
from app.wire.headers import DLQ_ERROR_HEADER as ERROR
from app.wire.headers import DLQ_SOURCE_OFFSET_HEADER as SOURCE_OFFSET
from app.wire.headers import DLQ_SOURCE_PARTITION_HEADER as SOURCE_PARTITION
from app.wire.headers import DLQ_SOURCE_TOPIC_HEADER as SOURCE_TOPIC


def test_original_headers_come_first_then_the_source_and_the_error() -> None:
    headers = dead_letter_headers([("x-datagen-bad-record", b"undecodable")], "orders.v1", 3, 1234, "magic byte 7")
    assert headers == [
        ("x-datagen-bad-record", b"undecodable"),
        (SOURCE_TOPIC, b"orders.v1"),
        (SOURCE_PARTITION, b"3"),
        (SOURCE_OFFSET, b"1234"),
        (ERROR, b"magic byte 7"),
    ]


def test_a_record_without_headers_and_a_long_error() -> None:
    headers = dead_letter_headers(None, "t", 0, 0, "x" * 2000)
    assert [name for name, _ in headers] == [SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, ERROR]
    assert headers[-1][1] == b"x" * 500
