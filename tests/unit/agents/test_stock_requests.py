"""The stock agent's reading of a request: a SALE or a RETURN arriving as a request is dead-lettered (the agent
decides those itself, from orders it ships), a RESTOCK or DAMAGE is taken."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from agents.requests import CHANGE, headers_of
from agents.stock import StockAgent
from app.inventory.stockroom import StockReference


class Intake:
    """Hands the change as decoded, and keeps what is dead-lettered."""

    def __init__(self, change: dict[str, Any]) -> None:
        self.change = change
        self.letters: list[tuple[str, str]] = []

    async def value(self, event: Any, topic: str, validate: Any, what: str, invalid: str) -> dict[str, Any]:
        return self.change

    def dead_letter(self, event: Any, error: str, reason: str) -> None:
        self.letters.append((error, reason))


def change(change_type: str, delta: int) -> dict[str, Any]:
    return {
        "change_id": "c1",
        "product_id": 7,
        "sku": "SKU-7",
        "warehouse_id": 1,
        "change_type": change_type,
        "delta": delta,
        "source_id": None,
        "event_time": 0,
    }


@pytest.mark.parametrize(
    ("change_type", "delta", "refused"),
    [("RESTOCK", 5, None), ("DAMAGE", -2, None), ("SALE", -1, "a SALE is decided"), ("RETURN", 1, "a RETURN is")],
)
def test_only_restocks_and_damage_are_taken_as_requests(change_type: str, delta: int, refused: str | None) -> None:
    intake = Intake(change(change_type, delta))
    agent = StockAgent(None, intake, None, None, {"inventory_changes": "ic"}, "req", Counter(), lambda: False)  # type: ignore[arg-type]
    agent.start(StockReference(warehouses={1: None}, opening={}, skus={7: "SKU-7"}, policies={}))  # type: ignore[dict-item]
    message = SimpleNamespace(key=b"7", headers=headers_of(CHANGE), partition=0, offset=3, timestamp=1_700_000_000.0)
    request = asyncio.run(agent._request(SimpleNamespace(message=message, value=b"")))  # type: ignore[arg-type]
    if refused is None:
        assert request is not None
        assert request.body["change_type"] == change_type
        assert intake.letters == []
    else:
        assert request is None
        ((error, reason),) = intake.letters
        assert refused in error
        assert reason == "invalid_change"
