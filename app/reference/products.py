"""Products: a category each, a charm price from its band, a cost from its margin band, a weight and skew."""

from __future__ import annotations

import random
from itertools import accumulate

from app.reference.categories import CATEGORIES, PRICE_LADDER, Category
from app.reference.popularity import deal_popularity
from app.reference.rows import ProductRow

#: Zipf offset as a fraction of the products: the top 10% of products draw about 60% of the demand.
PRODUCT_FLATNESS = 0.002


def sku(category: Category, product_id: int) -> str:
    """The stock-keeping unit: the category code and the zero-padded product id, as ``ELC-000042``."""
    return f"{category.code}-{product_id:06d}"


def draw_price(category: Category, rng: random.Random) -> int:
    """A shop price in cents from the category's band of the ladder, most often near its usual price."""
    low, usual, high = (PRICE_LADDER.index(price) for price in category.prices)
    step = int(rng.triangular(low, high + 1, usual + 0.5))
    return PRICE_LADDER[min(step, high)]


def draw_cost(price_cents: int, category: Category, rng: random.Random) -> int:
    """The unit cost in cents: the price less a gross margin from the category's band; 1 <= cost <= price."""
    margin = rng.uniform(*category.margin)
    return max(1, min(price_cents, round(price_cents * (1.0 - margin))))


def draw_weight(category: Category, rng: random.Random) -> int:
    """A shipping weight in grams, rounded to 5 g; light items are the commoner."""
    low, high = category.weight_grams
    return max(low, 5 * round(rng.triangular(low, high, low) / 5))


def generate_products(count: int, rng: random.Random) -> list[ProductRow]:
    """``count`` products with ids 1..count; their popularity shares add up to about 1."""
    picks = rng.choices(CATEGORIES, cum_weights=list(accumulate(category.share for category in CATEGORIES)), k=count)
    popularity = deal_popularity(count, PRODUCT_FLATNESS, rng)
    rows = []
    for index, category in enumerate(picks):
        product_id = index + 1
        price = draw_price(category, rng)
        brand = rng.choice(category.brands)
        name = category.name_format.format(
            brand=brand,
            qualifier=rng.choice(category.qualifiers),
            item=rng.choice(category.items),
            variant=rng.choice(category.variants),
        )
        rows.append(
            ProductRow(
                product_id=product_id,
                sku=sku(category, product_id),
                name=name,
                category=category.name,
                brand=brand,
                price_cents=price,
                list_price_cents=price,
                cost_cents=draw_cost(price, category, rng),
                weight_grams=draw_weight(category, rng),
                popularity=popularity[index],
            )
        )
    return rows
