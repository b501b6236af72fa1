"""Suppliers and the product_suppliers links: 1 to 3 suppliers per product, specialists first."""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate

from mimesis import Person
from mimesis.locales import Locale
from mimesis.random import Random as MimesisRandom

from app.reference.categories import CATEGORIES
from app.reference.geography import SUPPLIER_COUNTRIES, SupplierCountry
from app.reference.rows import ProductRow, ProductSupplierRow, SupplierRow

#: How many suppliers a product has: 1, 2 or 3, cumulative odds.
SUPPLIERS_PER_PRODUCT_CUM = (0.5, 0.8, 1.0)
#: An alternative supplier's unit cost relative to the primary's.
ALTERNATIVE_COST = (0.94, 1.12)
#: A product's lead time from a supplier: the supplier's usual lead time plus this many days.
LEAD_JITTER_DAYS = (-2, 4)
#: On-time delivery rate: lowest, most common, highest.
RELIABILITY = (0.70, 0.93, 0.995)


@dataclass(frozen=True)
class Supplier:
    """A supplier's row and its usual lead time in days, which its product links vary around."""

    row: SupplierRow
    lead_days: int


def _firm_name(country: SupplierCountry, trade: str, people: dict[str, Person], rng: random.Random) -> str:
    stem = people[country.locale].last_name() if country.locale is not None else rng.choice(country.stems)
    return f"{stem} {trade} {rng.choice(country.legal_suffixes)}"


def _specialties(count: int, rng: random.Random) -> list[str]:
    """Each category once (while there are suppliers enough), then by the categories' shares."""
    covering = [category.name for category in CATEGORIES]
    rng.shuffle(covering)
    cum_shares = list(accumulate(category.share for category in CATEGORIES))
    names = [category.name for category in CATEGORIES]
    rest = rng.choices(names, cum_weights=cum_shares, k=max(0, count - len(covering)))
    return (covering + rest)[:count]


def generate_suppliers(count: int, rng: random.Random) -> list[Supplier]:
    """``count`` suppliers with ids 1..count, names unique."""
    people = {
        country.locale: Person(Locale(country.locale), random=MimesisRandom(rng.getrandbits(64)))
        for country in SUPPLIER_COUNTRIES
        if country.locale is not None
    }
    trades = {category.name: category.trade for category in CATEGORIES}
    countries = rng.choices(
        SUPPLIER_COUNTRIES, cum_weights=list(accumulate(country.share for country in SUPPLIER_COUNTRIES)), k=count
    )
    taken: set[str] = set()
    suppliers = []
    for index, (country, specialty) in enumerate(zip(countries, _specialties(count, rng), strict=True)):
        supplier_id = index + 1
        name = _firm_name(country, trades[specialty], people, rng)
        for _ in range(4):
            if name not in taken:
                break
            name = _firm_name(country, trades[specialty], people, rng)
        if name in taken:
            name = f"{name} ({supplier_id})"
        taken.add(name)
        reliability = round(rng.triangular(RELIABILITY[0], RELIABILITY[2], RELIABILITY[1]), 3)
        row = SupplierRow(supplier_id, name, country.country, specialty, reliability)
        suppliers.append(Supplier(row, rng.randint(*country.lead_days)))
    return suppliers


def _pick_suppliers(specialists: list[int], everyone: int, wanted: int, rng: random.Random) -> list[int]:
    """``wanted`` distinct supplier indexes: specialists of the category first, then anyone."""
    if len(specialists) >= wanted:
        return rng.sample(specialists, wanted)
    chosen = rng.sample(specialists, len(specialists))
    while len(chosen) < wanted:
        candidate = rng.randrange(everyone)
        if candidate not in chosen:
            chosen.append(candidate)
    return chosen


def generate_product_suppliers(
    products: list[ProductRow], suppliers: list[Supplier], rng: random.Random
) -> list[ProductSupplierRow]:
    """Each product's suppliers, the first its primary: its unit cost is the product's cost."""
    by_specialty: dict[str, list[int]] = {category.name: [] for category in CATEGORIES}
    for index, supplier in enumerate(suppliers):
        by_specialty[supplier.row.specialty].append(index)
    links = []
    for product in products:
        wanted = min(len(suppliers), rng.choices((1, 2, 3), cum_weights=SUPPLIERS_PER_PRODUCT_CUM)[0])
        for position, index in enumerate(_pick_suppliers(by_specialty[product.category], len(suppliers), wanted, rng)):
            supplier = suppliers[index]
            cost = product.cost_cents
            if position > 0:
                cost = max(1, round(cost * rng.uniform(*ALTERNATIVE_COST)))
            lead = max(1, supplier.lead_days + rng.randint(*LEAD_JITTER_DAYS))
            links.append(ProductSupplierRow(product.product_id, supplier.row.supplier_id, cost, lead, position == 0))
    return links
