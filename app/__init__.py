"""retail-datagen: a realistic retail event generator built on Faust.

``faust -A app worker`` looks up the attribute ``app`` of this package. It is built on that first
lookup, not at import, so the pure modules below can be imported without settings or a broker.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name != "app":
        msg = f"module 'app' has no attribute {name!r}"
        raise AttributeError(msg)
    from app.main import app_from_environment

    built = app_from_environment()
    globals()["app"] = built
    return built
