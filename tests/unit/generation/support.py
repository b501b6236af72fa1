"""Shared by the generation tests (and others): a seeded catalogue, a generator factory, and the sampling tolerance.

Not a test module: pytest does not collect it; the check of its tolerance is in ``test_support.py``."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path
from typing import Any

from app.generation import Catalog, EventGenerator, GenerationConfig, Product
from app.settings import Settings
from app.wire.roles import CUSTOMER_INTERACTIONS, INVENTORY_CHANGES, ORDERS

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
SCHEMA_FILE = {
    ORDERS: "order.avsc",
    CUSTOMER_INTERACTIONS: "customer_interaction.avsc",
    INVENTORY_CHANGES: "inventory_change.avsc",
}
#: Standard errors an observed share may be off by: a seeded test fails by chance with probability < 1e-5.
Z = 4.5
NOW_MS = 1_700_000_000_000

_NAMES = {
    "Electronics": ("Voltra Wireless Earbuds Pro, Black", "Nexaline 4K Monitor Max, Silver", "Quorra Power Bank Lite"),
    "Books": ("Illustrated Field Guide (Paperback), Quillhouse", "Complete Cookbook (Hardcover), Meridian Books"),
    "Grocery & Gourmet": ("Harvest Hollow Organic Olive Oil, 500 g", "Golden Acre Roasted Ground Coffee, 1 kg"),
}


class FrozenWall:
    """A wall clock (seconds) that moves only when a test moves it: ``wall.seconds += 1.5``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


def tolerance(p: float, n: int) -> float:
    """How far the share observed in ``n`` independent draws may lie from its probability ``p``: Z sqrt(p(1-p)/n)."""
    return Z * math.sqrt(p * (1.0 - p) / n)


def assert_share(hits: int, n: int, p: float, what: str) -> None:
    """``hits`` of ``n`` draws is a share within ``tolerance(p, n)`` of ``p``."""
    assert n > 0, f"{what}: no draws"
    share, band = hits / n, tolerance(p, n)
    assert abs(share - p) <= band, f"{what}: {hits}/{n} = {share:.4f}, expected {p:.4f} +- {band:.4f}"


def zipf_weights(count: int, rng: random.Random) -> tuple[float, ...]:
    """Weights 1/(rank + 2), shuffled: a popularity skew like the reference data's."""
    weights = [1.0 / (rank + 2) for rank in range(1, count + 1)]
    rng.shuffle(weights)
    return tuple(weights)


def make_catalog(users: int = 2_000, products: int = 200, warehouses: int = 5, seed: int = 1) -> Catalog:
    """A catalogue with skewed user and product weights, names like the reference data's, ids not 0-based."""
    rng = random.Random(seed)
    categories = sorted(_NAMES)
    popularity = zipf_weights(products, rng)
    items = []
    for index in range(products):
        category = categories[index % len(categories)]
        name = _NAMES[category][index % len(_NAMES[category])]
        price = rng.choice((199, 999, 1999, 4999, 24999))
        items.append(Product(100 + index, f"SKU-{100 + index:06d}", name, category, price, popularity[index]))
    return Catalog(
        user_ids=tuple(range(1_000, 1_000 + users)),
        user_weights=zipf_weights(users, rng),
        products=tuple(items),
        warehouse_ids=tuple(range(11, 11 + warehouses)),
    )


def make_config(**knobs: Any) -> GenerationConfig:
    """The config of the default Settings, with ``knobs`` changed."""
    return dataclasses.replace(GenerationConfig.from_settings(Settings()), **knobs)


def make_generator(seed: int = 7, catalog: Catalog | None = None, **knobs: Any) -> EventGenerator:
    """A generator over ``make_catalog()`` seeded with ``seed``."""
    return EventGenerator(catalog or make_catalog(), make_config(**knobs), random.Random(seed))


def schema(kind: str) -> dict[str, Any]:
    """The .avsc of an event kind, as JSON."""
    parsed: dict[str, Any] = json.loads((SCHEMAS / SCHEMA_FILE[kind]).read_text())
    return parsed
