"""The catalogue, its search terms, and the sampler: popularity skew, recently active repeats, price updates."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable

import pytest

from app.generation import Catalog, CatalogError, GenerationError, Product, RecentSet, Sampler, search_terms
from app.generation.sampler import AliasTable
from tests.unit.generation.support import assert_share, make_catalog, tolerance

EARBUDS = Product(1, "ELC-000001", "Voltra Wireless Earbuds Pro, Black", "Electronics", 4999, 1.0)


def sampler(catalog: Catalog, seed: int = 5, **knobs: float) -> Sampler:
    settings = {"recent_users": 100, "recent_products": 20, "p_recent_user": 0.0, "p_recent_product": 0.0, **knobs}
    return Sampler(
        catalog,
        random.Random(seed),
        int(settings["recent_users"]),
        int(settings["recent_products"]),
        settings["p_recent_user"],
        settings["p_recent_product"],
    )


def test_search_terms_come_from_name_and_category() -> None:
    assert search_terms(EARBUDS) == (
        "voltra wireless earbuds pro",
        "voltra wireless",
        "wireless earbuds",
        "earbuds pro",
        "electronics",
    )
    book = Product(2, "BOK-000002", "Illustrated Field Guide (Paperback), Quillhouse", "Books", 1699, 1.0)
    assert search_terms(book) == ("illustrated field guide", "illustrated field", "field guide", "books")


@pytest.mark.parametrize(
    "change",
    [
        {"user_ids": ()},
        {"user_weights": (1.0,)},
        {"user_weights": (0.0, 0.0)},
        {"user_weights": (1.0, float("nan"))},
        {"user_ids": (3, 3)},
        {"warehouse_ids": ()},
        {"products": (dataclasses.replace(EARBUDS, price_cents=0),)},
        {"products": (dataclasses.replace(EARBUDS, cost_cents=5_000),)},
        {"products": (dataclasses.replace(EARBUDS, cost_cents=0),)},
        {"products": (EARBUDS, EARBUDS)},
        {"currency": "usd"},
    ],
)
def test_inconsistent_catalogs_are_refused(change: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "user_ids": (1, 2),
        "user_weights": (1.0, 2.0),
        "products": (EARBUDS,),
        "warehouse_ids": (1,),
        **change,
    }
    with pytest.raises(CatalogError):
        Catalog(**fields)  # type: ignore[arg-type]


def test_popular_products_are_drawn_by_their_weight(catalog_factory: Callable[..., Catalog]) -> None:
    catalog = catalog_factory()
    draws = 40_000
    by_weight = sorted(range(len(catalog.products)), key=lambda index: -catalog.products[index].popularity)
    top = set(by_weight[: len(by_weight) // 10])
    weights = [product.popularity for product in catalog.products]
    top_share = math.fsum(weights[index] for index in top) / math.fsum(weights)
    draw = sampler(catalog).draw_product
    hits = sum(draw() in top for _ in range(draws))
    assert_share(hits, draws, top_share, "top 10% of products")
    assert hits / draws > 0.10 + tolerance(0.10, draws)  # the skew shows: more than their head count


def test_popular_users_are_drawn_by_their_weight(catalog_factory: Callable[..., Catalog]) -> None:
    catalog = catalog_factory()
    draws = 40_000
    ranked = sorted(zip(catalog.user_weights, catalog.user_ids, strict=True), reverse=True)
    top = {user_id for _, user_id in ranked[: len(ranked) // 10]}
    top_share = math.fsum(weight for weight, _ in ranked[: len(ranked) // 10]) / math.fsum(catalog.user_weights)
    draw = sampler(catalog).draw_user
    hits = sum(draw() in top for _ in range(draws))
    assert_share(hits, draws, top_share, "top 10% of users")


def repeat_share(users: Sampler, draws: int) -> float:
    """The share of ``draws`` users that were in the recent set already."""
    recent = users.recent_users
    repeats = 0
    for _ in range(draws):
        size, oldest = len(recent), next(iter(recent.slots), None)
        users.draw_user()
        repeats += len(recent) == size and next(iter(recent.slots), None) == oldest  # nothing added, nothing evicted
    return repeats / draws


def test_recently_active_users_come_back(catalog_factory: Callable[..., Catalog]) -> None:
    catalog = catalog_factory(users=50_000)
    draws, p_recent = 20_000, 0.3
    baseline = repeat_share(sampler(catalog, p_recent_user=0.0, recent_users=500), draws)
    observed = repeat_share(sampler(catalog, p_recent_user=p_recent, recent_users=500), draws)
    # Repeats are the recent set's own share plus popularity draws that happen to hit it: p + (1 - p) x baseline.
    expected = p_recent + (1 - p_recent) * baseline
    assert observed >= expected - tolerance(expected, draws) - tolerance(baseline, draws)
    assert observed > baseline + tolerance(baseline, draws) + tolerance(observed, draws)


def test_trending_products_are_the_recently_drawn() -> None:
    products = sampler(make_catalog(), recent_products=20, p_recent_product=1.0)
    first = products.draw_product()  # the set is empty: a popularity draw
    assert {products.draw_product() for _ in range(100)} == {first}


def test_recent_set_evicts_the_least_recently_touched() -> None:
    recent = RecentSet(3)
    for item in (1, 2, 3):
        recent.touch(item)
    recent.touch(1)
    recent.touch(4)
    assert recent.recency() == [3, 1, 4]
    assert sorted(recent.items) == [1, 3, 4]
    assert 2 not in recent
    assert len(recent) == 3


def test_recent_set_picks_uniformly() -> None:
    recent = RecentSet(4)
    for item in (10, 20, 30, 40):
        recent.touch(item)
    rng = random.Random(2)
    draws = 8_000
    picks = [recent.pick(rng.random()) for _ in range(draws)]
    for item in (10, 20, 30, 40):
        assert_share(picks.count(item), draws, 0.25, f"item {item}")


def test_an_empty_recent_set_stays_empty() -> None:
    recent = RecentSet(0)
    recent.touch(1)
    assert len(recent) == 0


def test_set_price_is_what_the_sampler_charges() -> None:
    catalog = make_catalog()
    prices = sampler(catalog)
    product_id = catalog.products[7].product_id
    prices.set_price(product_id, 12_345)
    assert prices.prices[prices.index_of(product_id)] == 12_345
    with pytest.raises(GenerationError):
        prices.set_price(product_id, 0)
    with pytest.raises(GenerationError):
        prices.set_price(-1, 100)


def implied_shares(table: AliasTable) -> list[float]:
    """The probability of each index under ``table``: its own column's threshold plus what aliases give it, / n."""
    shares = [0.0] * table.size
    for column in range(table.size):
        shares[column] += table.thresholds[column]
        shares[table.aliases[column]] += 1.0 - table.thresholds[column]
    return [share / table.size for share in shares]


@pytest.mark.parametrize("seed", range(5))
def test_an_alias_table_gives_each_index_exactly_its_weights_share(seed: int) -> None:
    rng = random.Random(seed)
    weights = [rng.choice((0.0, rng.random(), rng.paretovariate(1.2))) for _ in range(rng.randint(1, 3_000))]
    weights[rng.randrange(len(weights))] = 1.0  # not all 0
    total = math.fsum(weights)
    table = AliasTable(weights)
    for index, share in enumerate(implied_shares(table)):
        assert share == pytest.approx(weights[index] / total, abs=1e-12), index
        if weights[index] == 0.0:
            assert share == 0.0, index  # never drawn, not even by rounding
    assert {table.pick(draw / 1000) for draw in range(1000)} <= {i for i, weight in enumerate(weights) if weight > 0}


@pytest.mark.parametrize("weights", [(), (0.0, 0.0), (1.0, -1.0)])
def test_an_alias_table_refuses_weights_that_draw_nothing(weights: tuple[float, ...]) -> None:
    with pytest.raises(GenerationError, match="expected weights >= 0, not all 0"):
        AliasTable(weights)
