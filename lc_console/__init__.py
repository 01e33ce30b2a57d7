"""lc-console: connect a Stripe account to a Salesforce org from the terminal."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lc-console")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+src"

APP_NAME = "lc-console"
