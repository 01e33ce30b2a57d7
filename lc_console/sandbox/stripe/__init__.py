"""A local emulator of the Stripe API with a seeded Stripe Billing account.

Imports nothing from the rest of lc_console. Start it with `lc-console sandbox stripe` or, in
tests, `with StripeSandbox(scenario="small", seed=1) as st:`.

The names below load on first use, so that registering `lc-console sandbox` (every CLI start)
does not import the whole emulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sandbox import SCENARIOS, STORIES, SandboxError, StoryResult, StripeSandbox
    from .versions import DEFAULT_API_VERSION, LEGACY_API_VERSION

__all__ = [
    "DEFAULT_API_VERSION",
    "LEGACY_API_VERSION",
    "SCENARIOS",
    "STORIES",
    "SandboxError",
    "StoryResult",
    "StripeSandbox",
]

_HOME = {"DEFAULT_API_VERSION": "versions", "LEGACY_API_VERSION": "versions"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_HOME.get(name, 'sandbox')}")
    return getattr(module, name)
