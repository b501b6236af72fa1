"""Event generation, pure: a seeded random.Random and the caller's clock in, Avro-shaped value dicts out."""

from app.generation.catalog_snapshot import Catalog, Product, search_terms
from app.generation.config import GenerationConfig, GenerationSettings, StreamPlace
from app.generation.events import Event, PriceChange
from app.generation.exceptions import CatalogError, GenerationError
from app.generation.faults import BAD_KINDS, BYTE_LEVEL_KINDS, SEMANTIC_KINDS, UNKNOWN_SCHEMA_IDS, corrupt
from app.generation.generator import EventGenerator
from app.generation.rate import TokenBucket, diurnal_factor, local_hour
from app.generation.sampler import RecentSet, Sampler
from app.generation.shards import ShardStream, block_size, deal, shard_share

__all__ = [
    "BAD_KINDS",
    "BYTE_LEVEL_KINDS",
    "SEMANTIC_KINDS",
    "UNKNOWN_SCHEMA_IDS",
    "Catalog",
    "CatalogError",
    "Event",
    "EventGenerator",
    "GenerationConfig",
    "GenerationError",
    "GenerationSettings",
    "PriceChange",
    "Product",
    "RecentSet",
    "Sampler",
    "ShardStream",
    "StreamPlace",
    "TokenBucket",
    "block_size",
    "corrupt",
    "deal",
    "diurnal_factor",
    "local_hour",
    "search_terms",
    "shard_share",
]
