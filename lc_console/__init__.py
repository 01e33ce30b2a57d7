"""lc-console: connect a Stripe account to a Salesforce org from the terminal."""

from __future__ import annotations

APP_NAME = "lc-console"


def __getattr__(name: str) -> str:
    # __version__ is read from the installed metadata when first asked for: importing
    # importlib.metadata costs ~50 ms, on every start of the CLI and the console.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("lc-console")
        except PackageNotFoundError:  # running from a source tree that was not installed
            value = "0.0.0+src"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
