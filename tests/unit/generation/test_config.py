"""The generator's knobs: GenerationConfig read from the settings."""

from __future__ import annotations

from app.generation import GenerationConfig
from app.settings import Settings


def test_default_settings_make_the_default_knobs() -> None:
    settings = Settings()
    config = GenerationConfig.from_settings(settings)
    assert config.mix == (settings.weight_orders, settings.weight_interactions, settings.weight_inventory_chg)
    assert config.p_late_event == settings.p_late_event
    assert config.p_bad_record == settings.p_bad_record
    assert config.p_update_price == settings.p_update_price
    assert config.p_shipped == settings.p_order_has_shipment
    assert config.p_returned == settings.p_update_inventory
    assert config.stream_eps == settings.target_eps
