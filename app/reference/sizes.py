"""How many rows of each kind the seed makes, and the bounds it accepts."""

from __future__ import annotations

from dataclasses import dataclass

from app.exceptions import SettingsError
from app.reference.geography import WAREHOUSE_SITES

#: One warehouse per distinct region: there are this many regions.
MAX_WAREHOUSES = len(WAREHOUSE_SITES)
#: Bounds that keep a seed within memory and the 32-bit quantities of the schema.
MAX_USERS = 5_000_000
MAX_PRODUCTS = 1_000_000
MAX_SUPPLIERS = 100_000


@dataclass(frozen=True)
class Sizes:
    """Row counts of the seeded tables that are sized by settings."""

    users: int
    products: int
    warehouses: int
    suppliers: int

    def __post_init__(self) -> None:
        """Refuse a size out of bounds with the one-line SettingsError of the variable that asked for it."""
        for variable, value, most in (
            ("N_USERS", self.users, MAX_USERS),
            ("N_PRODUCTS", self.products, MAX_PRODUCTS),
            ("N_WAREHOUSES", self.warehouses, MAX_WAREHOUSES),
            ("N_SUPPLIERS", self.suppliers, MAX_SUPPLIERS),
        ):
            if not 1 <= value <= most:
                raise SettingsError(variable, str(value), f"a whole number between 1 and {most}")
