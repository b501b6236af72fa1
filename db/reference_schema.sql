-- The reference data: eight tables the generator reads and users join their streams against,
-- and reference_seed, which records the one complete seed of them.
-- Applying this file twice changes nothing: each statement creates only what is missing, or sets a
-- function, trigger or comment to the text it already has.
-- Money is in cents (bigint), as in the Avro events; quantities are whole units.

create or replace function datagen_touch_updated_at() returns trigger
language plpgsql as $$
begin
    -- An update that sets updated_at itself (a mirror replaying an event time) keeps its value.
    if new.updated_at is not distinct from old.updated_at then
        new.updated_at := now();
    end if;
    return new;
end
$$;
comment on function datagen_touch_updated_at() is
    'Sets updated_at to now() on UPDATE unless the statement set it itself.';

-- customer_segments ------------------------------------------------------------------------------

create table if not exists customer_segments (
    segment_id      smallint    primary key,
    code            text        not null constraint customer_segments_code_key unique,
    name            text        not null,
    description     text        not null,
    priority        smallint    not null constraint customer_segments_priority_key unique,
    min_tenure_days integer     constraint customer_segments_min_tenure_nonnegative check (min_tenure_days >= 0),
    max_tenure_days integer     constraint customer_segments_max_tenure_positive check (max_tenure_days > 0),
    min_activity_bp integer     constraint customer_segments_min_activity_bp_range
                                check (min_activity_bp between 0 and 10000),
    max_activity_bp integer     constraint customer_segments_max_activity_bp_range
                                check (max_activity_bp between 0 and 10000),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint customer_segments_tenure_ordered check (min_tenure_days < max_tenure_days),
    constraint customer_segments_activity_ordered check (min_activity_bp < max_activity_bp)
);
comment on table customer_segments is
    'Customer segments and the rules that place users in them: the first segment by priority whose bounds all '
    'hold takes the user. A NULL bound does not apply; lower bounds are inclusive, upper bounds exclusive.';
comment on column customer_segments.segment_id is 'Segment identifier.';
comment on column customer_segments.code is 'Short stable name of the segment, e.g. vip.';
comment on column customer_segments.name is 'Display name of the segment.';
comment on column customer_segments.description is 'The rule in words.';
comment on column customer_segments.priority is 'Order in which the rules are tried, 1 first.';
comment on column customer_segments.min_tenure_days is
    'Least days from signup to the reference date a user needs (inclusive); NULL: no lower bound.';
comment on column customer_segments.max_tenure_days is
    'Days from signup to the reference date a user must stay under (exclusive); NULL: no upper bound.';
comment on column customer_segments.min_activity_bp is
    'Least activity position in basis points (0 = the most active user, 9999 = the least), inclusive; '
    'the position of the user ranked r (by popularity, 1 = highest) of n users is floor((r - 1) * 10000 / n).';
comment on column customer_segments.max_activity_bp is
    'Activity position in basis points the user must stay under (exclusive); NULL: no upper bound.';
comment on column customer_segments.created_at is 'When the row was written (seeded rows: the seed''s reference date).';
comment on column customer_segments.updated_at is 'When the row last changed (set by trigger on UPDATE).';

-- users ------------------------------------------------------------------------------------------

create table if not exists users (
    user_id     bigint           primary key,
    email       text             not null constraint users_email_key unique,
    first_name  text             not null,
    last_name   text             not null,
    country     text             not null constraint users_country_iso check (country ~ '^[A-Z]{2}$'),
    region      text             not null,
    signup_date date             not null,
    segment_id  smallint         not null
                constraint users_segment_id_fkey references customer_segments (segment_id),
    popularity  double precision not null constraint users_popularity_positive check (popularity > 0),
    created_at  timestamptz      not null default now(),
    updated_at  timestamptz      not null default now()
);
-- No secondary index: the generator reads users by id or loads (user_id, popularity) whole, and each index
-- costs the seed about a second per 100,000 users.
comment on table users is 'Customers. Seeded ids are dense, 1 to N_USERS.';
comment on column users.user_id is 'Customer identifier, as in the events.';
comment on column users.email is 'Unique e-mail address (seeded ones use reserved example domains).';
comment on column users.first_name is 'Given name.';
comment on column users.last_name is 'Family name.';
comment on column users.country is 'Country of residence, ISO 3166-1 alpha-2.';
comment on column users.region is 'State, province or county within the country.';
comment on column users.signup_date is 'Day the customer signed up.';
comment on column users.segment_id is 'The customer segment whose rule takes the user (see customer_segments).';
comment on column users.popularity is
    'Share of all customer activity this user accounts for (the shares add up to 1): sample users with it.';
comment on column users.created_at is 'When the row was written (seeded rows: the seed''s reference date).';
comment on column users.updated_at is 'When the row last changed (set by trigger on UPDATE).';

-- warehouses -------------------------------------------------------------------------------------

create table if not exists warehouses (
    warehouse_id   bigint      primary key,
    code           text        not null constraint warehouses_code_key unique,
    name           text        not null,
    region         text        not null constraint warehouses_region_key unique,
    city           text        not null,
    country        text        not null constraint warehouses_country_iso check (country ~ '^[A-Z]{2}$'),
    capacity_units bigint      not null constraint warehouses_capacity_positive check (capacity_units > 0),
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now()
);
comment on table warehouses is 'Fulfilment centres, one per region.';
comment on column warehouses.warehouse_id is 'Warehouse identifier, 1 to N_WAREHOUSES.';
comment on column warehouses.code is 'Short code, e.g. FC-US-EAST.';
comment on column warehouses.name is 'Display name.';
comment on column warehouses.region is 'The distinct region the warehouse serves, e.g. us-east.';
comment on column warehouses.city is 'City the warehouse stands in.';
comment on column warehouses.country is 'Country, ISO 3166-1 alpha-2.';
comment on column warehouses.capacity_units is 'Units of stock the warehouse can hold.';
comment on column warehouses.created_at is 'When the row was written (seeded rows: the seed''s reference date).';
comment on column warehouses.updated_at is 'When the row last changed (set by trigger on UPDATE).';

-- suppliers --------------------------------------------------------------------------------------

create table if not exists suppliers (
    supplier_id bigint       primary key,
    name        text         not null,
    country     text         not null constraint suppliers_country_iso check (country ~ '^[A-Z]{2}$'),
    specialty   text         not null,
    reliability numeric(4,3) not null constraint suppliers_reliability_range check (reliability between 0 and 1),
    created_at  timestamptz  not null default now(),
    updated_at  timestamptz  not null default now()
);
comment on table suppliers is 'Vendors the products are bought from.';
comment on column suppliers.supplier_id is 'Supplier identifier, 1 to N_SUPPLIERS.';
comment on column suppliers.name is 'Company name.';
comment on column suppliers.country is 'Country the supplier ships from, ISO 3166-1 alpha-2.';
comment on column suppliers.specialty is 'Product category the supplier mainly makes (products.category).';
comment on column suppliers.reliability is 'Share of purchase orders delivered complete and on time, 0 to 1.';
comment on column suppliers.created_at is 'When the row was written (seeded rows: the seed''s reference date).';
comment on column suppliers.updated_at is 'When the row last changed (set by trigger on UPDATE).';

-- products ---------------------------------------------------------------------------------------

create table if not exists products (
    product_id   bigint           primary key,
    sku          text             not null constraint products_sku_key unique,
    name         text             not null,
    category     text             not null,
    brand        text             not null,
    price_cents  bigint           not null constraint products_price_positive check (price_cents > 0),
    list_price_cents bigint,
    cost_cents   bigint           not null constraint products_cost_positive check (cost_cents > 0),
    weight_grams integer          not null constraint products_weight_positive check (weight_grams > 0),
    popularity   double precision not null constraint products_popularity_positive check (popularity > 0),
    created_at   timestamptz      not null default now(),
    updated_at   timestamptz      not null default now(),
    constraint products_price_covers_cost check (price_cents >= cost_cents)
);
create index if not exists products_category_idx on products (category);
create index if not exists products_popularity_idx on products (popularity desc);
comment on table products is 'The catalogue. Seeded ids are dense, 1 to N_PRODUCTS.';
comment on column products.product_id is 'Product identifier, as in the events.';
comment on column products.sku is 'Stock-keeping unit: category code and zero-padded product id, e.g. ELC-000042.';
comment on column products.name is 'Display name.';
comment on column products.category is 'Catalogue category, e.g. Electronics.';
comment on column products.brand is 'Brand the product is sold under.';
comment on column products.price_cents is 'List price in cents (US dollars), as unit_price in the events.';
-- Databases seeded before the column existed: their current price is the best list price there is.
alter table products add column if not exists list_price_cents bigint;
update products set list_price_cents = price_cents where list_price_cents is null;
comment on column products.list_price_cents is
    'The price as seeded. Price moves start from it, so every worker charges the same price at the same point.';
comment on column products.cost_cents is 'Unit cost in cents: what the primary supplier charges; never above the price.';
comment on column products.weight_grams is 'Shipping weight in grams.';
comment on column products.popularity is
    'Share of all demand this product draws (the shares add up to 1): sample products with it.';
comment on column products.created_at is 'When the row was written (seeded rows: the seed''s reference date).';
comment on column products.updated_at is 'When the row last changed (set by trigger on UPDATE).';

-- product_suppliers ------------------------------------------------------------------------------

create table if not exists product_suppliers (
    product_id      bigint      not null constraint product_suppliers_product_id_fkey references products (product_id),
    supplier_id     bigint      not null
                    constraint product_suppliers_supplier_id_fkey references suppliers (supplier_id),
    unit_cost_cents bigint      not null constraint product_suppliers_unit_cost_positive check (unit_cost_cents > 0),
    lead_time_days  integer     not null constraint product_suppliers_lead_time_positive check (lead_time_days > 0),
    is_primary      boolean     not null default false,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint product_suppliers_pkey primary key (product_id, supplier_id)
);
create unique index if not exists product_suppliers_one_primary_idx on product_suppliers (product_id) where is_primary;
create index if not exists product_suppliers_supplier_id_idx on product_suppliers (supplier_id);
comment on table product_suppliers is 'Which suppliers sell which product (1 to 3 each when seeded), at what cost and lead time.';
comment on column product_suppliers.product_id is 'The product.';
comment on column product_suppliers.supplier_id is 'A supplier of it.';
comment on column product_suppliers.unit_cost_cents is 'What this supplier charges per unit, in cents.';
comment on column product_suppliers.lead_time_days is 'Days from purchase order to delivery.';
comment on column product_suppliers.is_primary is 'The supplier the product is normally bought from; one per product.';
comment on column product_suppliers.created_at is 'When the row was written (seeded rows: the seed''s reference date).';
comment on column product_suppliers.updated_at is 'When the row last changed (set by trigger on UPDATE).';

-- inventory --------------------------------------------------------------------------------------

create table if not exists inventory (
    product_id    bigint      primary key constraint inventory_product_id_fkey references products (product_id),
    sku           text        not null constraint inventory_sku_key unique
                  constraint inventory_sku_fkey references products (sku) on update cascade,
    on_hand       integer     not null constraint inventory_on_hand_nonnegative check (on_hand >= 0),
    reserved      integer     not null constraint inventory_reserved_nonnegative check (reserved >= 0),
    reorder_point integer     not null constraint inventory_reorder_point_nonnegative check (reorder_point >= 0),
    reorder_qty   integer     not null constraint inventory_reorder_qty_positive check (reorder_qty > 0),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
comment on table inventory is
    'Stock per product over all warehouses: each quantity is the sum of the product''s warehouse_inventory rows.';
comment on column inventory.product_id is 'The product.';
comment on column inventory.sku is 'The product''s SKU (products.sku), for joins by SKU.';
comment on column inventory.on_hand is 'Units in stock in all warehouses.';
comment on column inventory.reserved is 'Units of on_hand promised to orders not yet shipped.';
comment on column inventory.reorder_point is 'Sum of the warehouses'' reorder points.';
comment on column inventory.reorder_qty is 'Sum of the warehouses'' reorder quantities.';
comment on column inventory.created_at is 'When the row was written (seeded rows: the seed''s reference date).';
comment on column inventory.updated_at is 'When the row last changed (set by trigger on UPDATE).';

-- warehouse_inventory ----------------------------------------------------------------------------

create table if not exists warehouse_inventory (
    warehouse_id  bigint      not null
                  constraint warehouse_inventory_warehouse_id_fkey references warehouses (warehouse_id),
    product_id    bigint      not null constraint warehouse_inventory_product_id_fkey references products (product_id),
    on_hand       integer     not null constraint warehouse_inventory_on_hand_nonnegative check (on_hand >= 0),
    reserved      integer     not null constraint warehouse_inventory_reserved_nonnegative check (reserved >= 0),
    reorder_point integer     not null
                  constraint warehouse_inventory_reorder_point_nonnegative check (reorder_point >= 0),
    reorder_qty   integer     not null constraint warehouse_inventory_reorder_qty_positive check (reorder_qty > 0),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    constraint warehouse_inventory_pkey primary key (warehouse_id, product_id)
);
create index if not exists warehouse_inventory_product_id_idx on warehouse_inventory (product_id);
comment on table warehouse_inventory is 'Stock per warehouse and product; seeded for every pair, possibly at zero.';
comment on column warehouse_inventory.warehouse_id is 'The warehouse.';
comment on column warehouse_inventory.product_id is 'The product.';
comment on column warehouse_inventory.on_hand is 'Units in stock in this warehouse.';
comment on column warehouse_inventory.reserved is 'Units of on_hand promised to orders not yet shipped.';
comment on column warehouse_inventory.reorder_point is 'When available stock falls to this, reorder.';
comment on column warehouse_inventory.reorder_qty is 'Units to reorder at a time.';
comment on column warehouse_inventory.created_at is 'When the row was written (seeded rows: the seed''s reference date).';
comment on column warehouse_inventory.updated_at is 'When the row last changed (set by trigger on UPDATE).';

-- updated_at triggers ----------------------------------------------------------------------------

create or replace trigger customer_segments_touch_updated_at before update on customer_segments
    for each row execute function datagen_touch_updated_at();
create or replace trigger users_touch_updated_at before update on users
    for each row execute function datagen_touch_updated_at();
create or replace trigger warehouses_touch_updated_at before update on warehouses
    for each row execute function datagen_touch_updated_at();
create or replace trigger suppliers_touch_updated_at before update on suppliers
    for each row execute function datagen_touch_updated_at();
create or replace trigger products_touch_updated_at before update on products
    for each row execute function datagen_touch_updated_at();
create or replace trigger product_suppliers_touch_updated_at before update on product_suppliers
    for each row execute function datagen_touch_updated_at();
create or replace trigger inventory_touch_updated_at before update on inventory
    for each row execute function datagen_touch_updated_at();
create or replace trigger warehouse_inventory_touch_updated_at before update on warehouse_inventory
    for each row execute function datagen_touch_updated_at();

-- reference_seed ---------------------------------------------------------------------------------

create table if not exists reference_seed (
    singleton         boolean     primary key default true constraint reference_seed_singleton check (singleton),
    random_seed       numeric     not null,
    n_users           integer     not null,
    n_products        integer     not null,
    n_warehouses      integer     not null,
    n_suppliers       integer     not null,
    generator_version integer     not null,
    schema_sha256     text        not null,
    seeded_at         timestamptz not null default now()
);
comment on table reference_seed is
    'The one complete seed of the eight reference tables, written in the same transaction as their rows: '
    'while it has its row the seed leaves the tables alone.';
comment on column reference_seed.singleton is 'Always true: the table holds at most one row.';
comment on column reference_seed.random_seed is 'RANDOM_SEED the rows were made from (chosen and logged when unset).';
comment on column reference_seed.n_users is 'N_USERS of the seed.';
comment on column reference_seed.n_products is 'N_PRODUCTS of the seed.';
comment on column reference_seed.n_warehouses is 'N_WAREHOUSES of the seed.';
comment on column reference_seed.n_suppliers is 'N_SUPPLIERS of the seed.';
comment on column reference_seed.generator_version is 'Version of the generator: the same seed and sizes give the same rows within a version.';
comment on column reference_seed.schema_sha256 is 'SHA-256 of the schema file last applied; a start that finds it current skips the DDL.';
comment on column reference_seed.seeded_at is 'When the seed committed.';
