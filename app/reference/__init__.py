"""Reference data, pure: the rows of the eight Postgres tables from a seeded random.Random and a fixed date."""

from app.reference.dataset import (
    GENERATOR_VERSION,
    REFERENCE_DATE,
    ReferenceData,
    Table,
    generate_reference_data,
    reference_instant,
    reference_tables,
)
from app.reference.sizes import Sizes

__all__ = [
    "GENERATOR_VERSION",
    "REFERENCE_DATE",
    "ReferenceData",
    "Sizes",
    "Table",
    "generate_reference_data",
    "reference_instant",
    "reference_tables",
]
