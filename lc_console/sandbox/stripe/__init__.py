"""A local emulator of the Stripe API with a seeded Stripe Billing account.

Imports nothing from the rest of lc_console. Start it with `lc-console sandbox stripe` or, in
tests, `with StripeSandbox(scenario="small", seed=1) as st:`.
"""

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
