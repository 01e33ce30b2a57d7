"""A local emulator of a Salesforce org (HTTPS REST, OAuth, SOAP login, Metadata, Bulk 2.0).

Imports nothing from the rest of lc_console. Start it with `SalesforceSandbox` (sandbox.py)
or `lc-console sandbox salesforce`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lc_console.sandbox.salesforce.sandbox import SalesforceSandbox

__all__ = ["SalesforceSandbox"]


def __getattr__(name: str) -> Any:
    if name == "SalesforceSandbox":
        from lc_console.sandbox.salesforce.sandbox import SalesforceSandbox

        return SalesforceSandbox
    raise AttributeError(name)
