"""The pure reference-data generator: reproducible, sized as asked, skewed, and consistent across tables."""

from __future__ import annotations

import hashlib
import math
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from functools import cache

import pytest

from app.exceptions import SettingsError
from app.reference import REFERENCE_DATE, ReferenceData, Sizes, generate_reference_data, reference_tables
from app.reference.categories import CATEGORIES, PRICE_LADDER
from app.reference.popularity import activity_ranks, zipf_shares
from app.reference.segments import SEGMENTS, activity_bp, segment_for
from app.reference.sizes import MAX_WAREHOUSES
from app.reference.users import EMAIL_DOMAINS, SIGNUP_SPAN_DAYS, ascii_name

SMALL = Sizes(users=400, products=120, warehouses=4, suppliers=15)
#: The digest of the rows for RANDOM_SEED=42 and SMALL. It changes only when the generator (or the pinned
#: Mimesis) changes what a seed makes: then bump GENERATOR_VERSION and update it.
GOLDEN_DIGEST = "da439f78334e2bd87c5528d79089296b7a0e51f68a7e9dc8f450be62ef8771a3"


def _digest(data: ReferenceData) -> str:
    text = "\n".join(f"{table.name}:{row!r}" for table in data.tables() for row in table.rows)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@cache
def _data(seed: int = 42, sizes: Sizes = SMALL) -> ReferenceData:
    return generate_reference_data(sizes, random.Random(seed))


@cache
def _large() -> ReferenceData:
    return generate_reference_data(Sizes(users=20_000, products=2_000, warehouses=5, suppliers=50), random.Random(1))


def _top_share(shares: list[float], fraction: float) -> float:
    ranked = sorted(shares, reverse=True)
    return math.fsum(ranked[: max(1, int(len(ranked) * fraction))])


# Reproducible --------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_rows() -> None:
    assert generate_reference_data(SMALL, random.Random(42)) == _data(42)


def test_another_seed_gives_other_rows() -> None:
    other = _data(43)
    assert other.users != _data(42).users
    assert other.products != _data(42).products
    assert other.warehouse_inventory != _data(42).warehouse_inventory


def test_the_rows_of_a_seed_are_pinned() -> None:
    assert _digest(_data(42)) == GOLDEN_DIGEST


def test_the_rows_do_not_depend_on_string_hashing() -> None:
    code = (
        "import random, sys; sys.path.insert(0, '.');"
        "from tests.unit.reference.test_reference_data import _digest, SMALL;"
        "from app.reference import generate_reference_data;"
        "print(_digest(generate_reference_data(SMALL, random.Random(42))))"
    )
    for hash_seed in ("1", "977"):
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.strip() == _digest(_data(42))


def test_streamed_tables_are_the_tables_in_memory() -> None:
    streamed = [(table.name, list(table.rows)) for table in reference_tables(SMALL, random.Random(42))]
    assert streamed == [(table.name, list(table.rows)) for table in _data(42).tables()]


def test_the_reference_date_not_the_clock_anchors_signups() -> None:
    later = generate_reference_data(SMALL, random.Random(42), REFERENCE_DATE + timedelta(days=10))
    assert [user.signup_date for user in later.users] == [
        user.signup_date + timedelta(days=10) for user in _data(42).users
    ]


# Sizes ---------------------------------------------------------------------------------------------------


def test_sizes_are_honoured_with_dense_ids() -> None:
    data = _data(42)
    assert [user.user_id for user in data.users] == list(range(1, 401))
    assert [product.product_id for product in data.products] == list(range(1, 121))
    assert [warehouse.warehouse_id for warehouse in data.warehouses] == [1, 2, 3, 4]
    assert [supplier.supplier_id for supplier in data.suppliers] == list(range(1, 16))
    assert [row.product_id for row in data.inventory] == list(range(1, 121))
    assert len(data.warehouse_inventory) == 4 * 120


def test_the_smallest_data_set_is_whole() -> None:
    data = generate_reference_data(Sizes(1, 1, 1, 1), random.Random(0))
    assert (len(data.users), len(data.products), len(data.warehouses), len(data.suppliers)) == (1, 1, 1, 1)
    assert [(link.product_id, link.supplier_id, link.is_primary) for link in data.product_suppliers] == [(1, 1, True)]


def test_one_warehouse_per_region_up_to_the_number_of_regions() -> None:
    data = generate_reference_data(Sizes(10, 10, MAX_WAREHOUSES, 3), random.Random(0))
    assert len({warehouse.region for warehouse in data.warehouses}) == MAX_WAREHOUSES
    assert len({warehouse.code for warehouse in data.warehouses}) == MAX_WAREHOUSES


@pytest.mark.parametrize(
    ("sizes", "variable"),
    [
        ({"users": 0}, "N_USERS"),
        ({"products": -1}, "N_PRODUCTS"),
        ({"warehouses": MAX_WAREHOUSES + 1}, "N_WAREHOUSES"),
        ({"suppliers": 0}, "N_SUPPLIERS"),
    ],
)
def test_sizes_out_of_bounds_are_refused_naming_the_variable(sizes: dict[str, int], variable: str) -> None:
    arguments = {"users": 1, "products": 1, "warehouses": 1, "suppliers": 1, **sizes}
    with pytest.raises(SettingsError, match=f"^invalid setting {variable}=") as raised:
        Sizes(**arguments)
    assert "a whole number between 1 and" in str(raised.value)


# Skew ----------------------------------------------------------------------------------------------------


def test_a_few_products_and_users_take_most_of_the_activity() -> None:
    data = _large()
    product_shares = [product.popularity for product in data.products]
    user_shares = [user.popularity for user in data.users]
    assert math.isclose(math.fsum(product_shares), 1.0)
    assert math.isclose(math.fsum(user_shares), 1.0)
    assert _top_share(product_shares, 0.10) > 0.55
    assert _top_share(product_shares, 0.20) > 0.65
    assert _top_share(user_shares, 0.10) > 0.45
    assert _top_share(user_shares, 0.20) > 0.60
    assert _top_share(user_shares, 0.50) < 0.95  # skewed, not degenerate


def test_popular_ids_are_spread_not_the_lowest() -> None:
    shares = [product.popularity for product in _large().products]
    top = sorted(range(len(shares)), key=lambda index: -shares[index])[:100]
    assert max(top) > len(shares) // 2


def test_zipf_shares_fall_with_rank_and_add_up_to_one() -> None:
    shares = zipf_shares(1000, 2.0)
    assert shares == sorted(shares, reverse=True)
    assert math.isclose(math.fsum(shares), 1.0)
    assert activity_ranks([0.1, 0.5, 0.2, 0.2]) == [4, 1, 2, 3]


# Users ---------------------------------------------------------------------------------------------------


def test_emails_are_unique_ascii_and_on_reserved_domains() -> None:
    emails = [user.email for user in _large().users]
    assert len(set(emails)) == len(emails)
    assert all(email.isascii() and email == email.lower() for email in emails)
    assert {email.split("@")[1] for email in emails} <= set(EMAIL_DOMAINS)


@pytest.mark.parametrize(
    ("name", "folded"),
    [("Gołębiewska", "golebiewska"), ("O'Brien", "obrien"), ("Ødegård", "odegard"), ("Straße", "strasse"),
     ("Vander Laan", "vanderlaan"), ("Jean-Pierre", "jeanpierre")],
)
def test_names_fold_to_ascii_for_emails(name: str, folded: str) -> None:
    assert ascii_name(name) == folded


def test_users_live_in_the_markets_with_regions_and_signed_up_before_the_reference_date() -> None:
    users = _large().users
    countries = Counter(user.country for user in users)
    assert countries.most_common(1)[0][0] == "US"
    assert len(countries) >= 8
    assert all(user.region and user.first_name and user.last_name for user in users)
    earliest = REFERENCE_DATE - timedelta(days=SIGNUP_SPAN_DAYS)
    assert all(earliest <= user.signup_date <= REFERENCE_DATE for user in users)
    assert min(user.signup_date for user in users) < date(2020, 1, 1)
    assert sum(user.signup_date.year == 2024 for user in users) > sum(user.signup_date.year == 2019 for user in users)


def test_each_user_is_in_the_first_segment_whose_rule_takes_them() -> None:
    users = _large().users
    ranks = activity_ranks([user.popularity for user in users])
    for user, rank in zip(users, ranks, strict=True):
        tenure = (REFERENCE_DATE - user.signup_date).days
        assert user.segment_id == segment_for(tenure, activity_bp(rank, len(users)))
    assert set(Counter(user.segment_id for user in users)) == {segment.segment_id for segment in SEGMENTS}
    assert [segment.priority for segment in SEGMENTS] == sorted(segment.priority for segment in SEGMENTS)


# Products and suppliers ----------------------------------------------------------------------------------


def test_prices_cover_costs_with_the_categorys_margin() -> None:
    bands = {category.name: category for category in CATEGORIES}
    for product in _large().products:
        category = bands[product.category]
        assert 0 < product.cost_cents <= product.price_cents
        assert product.price_cents in PRICE_LADDER
        assert category.prices[0] <= product.price_cents <= category.prices[2]
        margin = (product.price_cents - product.cost_cents) / product.price_cents
        low, high = category.margin
        assert low - 0.01 <= margin <= high + 0.01, product
        assert product.weight_grams >= category.weight_grams[0]
        assert product.sku.startswith(category.code + "-")
        assert product.brand in category.brands
        assert product.name


def test_every_category_appears_in_a_catalogue_of_thousands() -> None:
    assert {product.category for product in _large().products} == {category.name for category in CATEGORIES}


def test_each_product_has_one_to_three_suppliers_and_one_primary_at_its_cost() -> None:
    data = _large()
    links = defaultdict(list)
    for link in data.product_suppliers:
        links[link.product_id].append(link)
    costs = {product.product_id: product.cost_cents for product in data.products}
    assert set(links) == set(costs)
    for product_id, own in links.items():
        assert 1 <= len(own) <= 3
        assert len({link.supplier_id for link in own}) == len(own)
        primaries = [link for link in own if link.is_primary]
        assert len(primaries) == 1
        assert primaries[0].unit_cost_cents == costs[product_id]
        assert all(link.lead_time_days > 0 and link.unit_cost_cents > 0 for link in own)
    assert Counter(len(own) for own in links.values()).keys() == {1, 2, 3}


def test_suppliers_have_unique_names_a_country_and_a_reliability() -> None:
    suppliers = _large().suppliers
    assert len({supplier.name for supplier in suppliers}) == len(suppliers)
    assert all(len(supplier.country) == 2 and 0 < supplier.reliability <= 1 for supplier in suppliers)
    assert {supplier.specialty for supplier in suppliers} == {category.name for category in CATEGORIES}


def test_fewer_suppliers_than_categories_still_supply_every_product() -> None:
    data = generate_reference_data(Sizes(10, 200, 2, 2), random.Random(3))
    assert {link.product_id for link in data.product_suppliers} == set(range(1, 201))
    assert {link.supplier_id for link in data.product_suppliers} <= {1, 2}


# Stock ---------------------------------------------------------------------------------------------------


def test_inventory_is_the_sum_of_the_warehouse_inventory() -> None:
    data = _large()
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for line in data.warehouse_inventory:
        total = sums[line.product_id]
        for index, quantity in enumerate((line.on_hand, line.reserved, line.reorder_point, line.reorder_qty)):
            total[index] += quantity
    for row in data.inventory:
        assert [row.on_hand, row.reserved, row.reorder_point, row.reorder_qty] == sums[row.product_id]
    skus = {product.product_id: product.sku for product in data.products}
    assert all(row.sku == skus[row.product_id] for row in data.inventory)


def test_stock_is_plausible_and_fits_the_warehouses() -> None:
    data = _large()
    for line in data.warehouse_inventory:
        assert 0 <= line.reserved <= line.on_hand
        assert line.reorder_point >= 0
        assert line.reorder_qty > 0
    stocked = Counter()
    for line in data.warehouse_inventory:
        stocked[line.warehouse_id] += line.on_hand
    assert all(stocked[warehouse.warehouse_id] <= warehouse.capacity_units for warehouse in data.warehouses)
    out_of_stock = sum(line.on_hand == 0 for line in data.warehouse_inventory) / len(data.warehouse_inventory)
    assert 0.01 < out_of_stock < 0.10
    popular = max(data.products, key=lambda product: product.popularity).product_id
    rare = min(data.products, key=lambda product: product.popularity).product_id
    by_product = {row.product_id: row for row in data.inventory}
    assert by_product[popular].reorder_point > by_product[rare].reorder_point
