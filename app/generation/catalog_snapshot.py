"""The reference data the generator samples from: users, products and warehouses, as loaded from Postgres."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

from app.generation.exceptions import CatalogError

_WORD = re.compile(r"[a-z0-9][a-z0-9'&+-]*")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue item as orders see it: money in cents, popularity a relative weight."""

    product_id: int
    sku: str
    name: str
    category: str
    price_cents: int
    popularity: float
    #: The unit cost: price changes never go below it (products_price_covers_cost in Postgres).
    cost_cents: int = 1


@dataclass(frozen=True, slots=True)
class Catalog:
    """A snapshot of the reference data; prices that change later live in the Sampler, not here."""

    user_ids: tuple[int, ...]
    user_weights: tuple[float, ...]
    products: tuple[Product, ...]
    warehouse_ids: tuple[int, ...]
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not self.user_ids or not self.products or not self.warehouse_ids:
            raise CatalogError("a catalog needs at least one user, one product and one warehouse")
        if len(self.user_weights) != len(self.user_ids):
            msg = f"{len(self.user_ids)} user ids but {len(self.user_weights)} user weights"
            raise CatalogError(msg)
        _check_weights("user_weights", self.user_weights)
        _check_weights("product popularity", tuple(product.popularity for product in self.products))
        _check_unique("user_ids", self.user_ids)
        _check_unique("product ids", tuple(product.product_id for product in self.products))
        _check_unique("warehouse_ids", self.warehouse_ids)
        for product in self.products:
            if not 1 <= product.cost_cents <= product.price_cents:
                msg = f"product {product.product_id}: price {product.price_cents}, cost {product.cost_cents} cents; "
                raise CatalogError(msg + "expected 1 <= cost <= price")
        if not _CURRENCY.match(self.currency):
            msg = f"currency {self.currency!r}: expected an ISO 4217 code such as USD"
            raise CatalogError(msg)

    def search_terms(self) -> tuple[tuple[str, ...], ...]:
        """Each product's search terms, in the order of ``products``."""
        return tuple(search_terms(product) for product in self.products)


def search_terms(product: Product) -> tuple[str, ...]:
    """What a shopper types to find ``product``: its name before any comma, its word pairs, its category.

    ``Voltra Wireless Earbuds Pro, Black`` in Electronics gives ``voltra wireless earbuds pro``,
    ``voltra wireless``, ``wireless earbuds``, ``earbuds pro`` and ``electronics``.
    """
    base = product.name.split(",", 1)[0].split("(", 1)[0].strip().lower()
    words = _WORD.findall(base)
    terms = [" ".join(words)] if words else []
    terms += [f"{first} {second}" for first, second in itertools.pairwise(words)]
    terms.append(product.category.strip().lower())
    return tuple(dict.fromkeys(term for term in terms if term))


def _check_weights(what: str, weights: tuple[float, ...]) -> None:
    if not all(math.isfinite(weight) and weight >= 0.0 for weight in weights) or math.fsum(weights) <= 0.0:
        msg = f"{what}: expected finite numbers >= 0, not all 0"
        raise CatalogError(msg)


def _check_unique(what: str, ids: tuple[int, ...]) -> None:
    if len(set(ids)) != len(ids):
        msg = f"{what}: expected each id once"
        raise CatalogError(msg)
