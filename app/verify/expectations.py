"""What the data must show under the configured settings: each probability, from where the code draws it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.derivation import DerivationConfig
from app.generation import GenerationConfig
from app.generation.faults import BAD_KINDS
from app.verify.shares import Z
from app.wire.roles import requests_topic

if TYPE_CHECKING:  # read by attribute only: the pure checks import no settings machinery (pydantic, psycopg2)
    from app.settings import Settings

#: The three kinds of generated event, as the mix names them.
ORDERS, INTERACTIONS, BACKGROUND = "orders", "interactions", "background_changes"


@dataclass(frozen=True)
class Expectations:
    """The probabilities and modes a run was made with: the settings', and the generator's and agents' own knobs."""

    #: Weights of orders, interactions and background inventory changes (WEIGHT_*).
    mix: dict[str, float]
    p_bad_record: float
    bad_kinds: tuple[str, ...]
    p_late_event: float
    #: Smallest and largest delay of a late event, and its median (milliseconds).
    late_range_ms: tuple[int, int]
    late_median_ms: float
    #: Relative weights of ordering 1, 2, 3, ... units, by quantity as text.
    quantity: dict[str, float]
    #: Of the steps that follow a product page, the share that are cart adds (the rest search again).
    p_cart_after_product_view: float
    p_payment: float
    decline_share: float
    methods: dict[str, float]
    p_shipment: float
    #: Share of shipped orders returned (P_UPDATE_INVENTORY), and the latest a return is due after the shipment's
    #: ETA (milliseconds).
    p_return: float
    return_window_ms: int
    agents_enabled: bool
    canon_inventory: str
    mirror_inventory_to_db: bool
    #: Topic names by role (Settings.topics()) and the agents' internal stock requests topic.
    topics: dict[str, str]
    requests_topic: str
    z: float = Z
    #: Share of generated records sent a second time (P_DUPLICATE).
    p_duplicate: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, z: float = Z) -> Expectations:
        """What ``settings`` (read from the environment, like the worker's) promise."""
        generation = GenerationConfig.from_settings(settings)
        derivation = DerivationConfig.from_settings(settings, lead_time_scale=settings.lead_time_scale)
        after_view = generation.p_cart_after_view + generation.p_search_after_view
        return cls(
            mix={
                ORDERS: settings.weight_orders,
                INTERACTIONS: settings.weight_interactions,
                BACKGROUND: settings.weight_inventory_chg,
            },
            p_bad_record=settings.p_bad_record,
            p_duplicate=settings.p_duplicate,
            bad_kinds=BAD_KINDS,
            p_late_event=settings.p_late_event,
            late_range_ms=(generation.late_min_ms, generation.late_max_ms),
            late_median_ms=generation.late_median_ms,
            quantity={str(units): weight for units, weight in enumerate(generation.quantity_weights, start=1)},
            p_cart_after_product_view=generation.p_cart_after_view / after_view if after_view else 0.0,
            p_payment=derivation.p_payment,
            decline_share=derivation.decline_share,
            methods=dict(derivation.method_shares),
            p_shipment=derivation.p_shipment,
            p_return=derivation.p_return,
            return_window_ms=derivation.scaled_ms(derivation.return_days[1]),
            agents_enabled=settings.agents_enabled,
            canon_inventory=settings.canon_inventory,
            mirror_inventory_to_db=settings.mirror_inventory_to_db,
            topics=settings.topics(),
            requests_topic=requests_topic(settings.app_id),
            z=z,
        )

    @property
    def postgres_holds_stock(self) -> bool:
        """Whether warehouse_inventory follows the ledger: the canonical rows, or the mirror of the Kafka table."""
        return self.canon_inventory == "postgres" or self.mirror_inventory_to_db
