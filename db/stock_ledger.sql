-- The Postgres-canonical stock ledger (CANON_INVENTORY=postgres): what the stock agent keeps beside the
-- warehouse_inventory rows it decides against. Every table is written in the transaction of a batch.

create table if not exists stock_products (
    product_id      bigint  primary key,
    on_order        jsonb   not null default '{}',
    requests_offset bigint  not null default -1,
    orders_seen     jsonb   not null default '{}',
    next_seq        integer not null default 0
);
comment on table stock_products is
    'Per product: units reordered and not yet arrived by warehouse, the last stock request applied (offset in its '
    'partition), the last order decided per orders partition, and the next backorder''s place in the queue.';

create table if not exists stock_backorders (
    product_id bigint  not null,
    seq        integer not null,
    body       jsonb   not null,
    primary key (product_id, seq)
);
comment on table stock_backorders is 'Orders waiting for stock, first come first served per product (seq).';

create table if not exists stock_schedule (
    item_id      text   primary key,
    product_id   bigint not null,
    due_ms       bigint not null,
    body         jsonb  not null,
    requested_ms bigint
);
create index if not exists stock_schedule_due_idx on stock_schedule (due_ms);
comment on table stock_schedule is
    'Returns, reorders and backorder expiries due later; requested_ms: when the timer last asked for it.';

create table if not exists stock_outbox (
    id         bigint      generated always as identity primary key,
    role       text        not null,
    key        text        not null,
    value      jsonb       not null,
    created_at timestamptz not null default now()
);
comment on table stock_outbox is
    'Records decided in a committed batch and not yet acknowledged by Kafka: the relay sends them, then deletes them.';

create table if not exists inventory_applied_changes (
    change_id  text        primary key,
    applied_at timestamptz not null default now()
);
comment on table inventory_applied_changes is
    'Opening balances already written to the inventory-changes topic (the rows held the seeded stock already).';
