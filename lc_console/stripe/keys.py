"""Stripe API keys: what kind a key is, which account it opens, and what it may read.

Restricted keys (rk_) are recommended: the console only reads, and a restricted key can be
limited to exactly the reads below. Secret keys (sk_) work but can do anything, so they are
accepted with a warning. Publishable keys (pk_) cannot read anything server-side and are
refused. The key is never echoed: messages show at most its prefix and last four characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

# stripe (and requests under it) is imported where a key is checked: the CLI names the needed
# permissions in its --help, and importing stripe there cost every command ~0.2 s.
if TYPE_CHECKING:
    import stripe


class KeyKind(StrEnum):
    RESTRICTED = "restricted key"
    SECRET = "secret key"


class KeyRefused(ValueError):
    """A key the console will not use; the message says why and what to use instead."""


@dataclass(frozen=True)
class KeyClass:
    kind: KeyKind
    mode: str  # "test" | "live"
    warning: str = ""


_KEY_RE = re.compile(r"^(sk|rk|pk)_(test|live)_[A-Za-z0-9]{8,}$")


def mask(key: str) -> str:
    """rk_live_…abcd: enough to recognise a key, never enough to use it."""
    key = key.strip()
    m = re.match(r"^([a-z]+_(?:test|live)_)", key)
    prefix = m.group(1) if m else ""
    return f"{prefix}…{key[-4:]}" if len(key) > len(prefix) + 8 else f"{prefix}…"


def classify(key: str) -> KeyClass:
    key = key.strip()
    if not key:
        raise KeyRefused("No key given. Paste a restricted key (rk_live_… or rk_test_…) from "
                         "the Stripe Dashboard, Developers > API keys.")
    if key.startswith("whsec_"):
        raise KeyRefused("That is a webhook signing secret (whsec_…), not an API key. Create a "
                         "restricted key in the Stripe Dashboard, Developers > API keys.")
    m = _KEY_RE.match(key)
    if not m:
        raise KeyRefused("That does not look like a Stripe API key: expected rk_live_…, "
                         "rk_test_…, sk_live_… or sk_test_… followed by letters and digits, "
                         "with no spaces.")
    prefix, mode = m.group(1), m.group(2)
    if prefix == "pk":
        raise KeyRefused(
            f"{mask(key)} is a publishable key. Publishable keys are meant for browsers and "
            "cannot read customers, invoices or events. Create a restricted key (rk_…) with "
            "the read permissions listed by `lc-console connect stripe --help` instead.")
    if prefix == "sk":
        return KeyClass(KeyKind.SECRET, mode, warning=(
            "This is a secret key: it can change and delete anything in the Stripe account, "
            "though lc-console only reads. A restricted key (rk_…) with read permissions only "
            "is safer; create one in the Dashboard, Developers > API keys."))
    return KeyClass(KeyKind.RESTRICTED, mode)


# --- permission probes ----------------------------------------------------------------------


@dataclass(frozen=True)
class NeededPermission:
    resource: str  # Dashboard row in the restricted-key editor
    api_name: str  # the name Stripe's 403 message uses
    needed_for: str
    probe: Callable[[stripe.StripeClient], Any]

    @property
    def permission(self) -> str:
        return f"{self.resource}: Read"


def _lister(service: str) -> Callable[[stripe.StripeClient], Any]:
    def probe(client: stripe.StripeClient) -> Any:
        return getattr(client.v1, service).list(params={"limit": 1})
    return probe


NEEDED: tuple[NeededPermission, ...] = (
    NeededPermission("Customers", "rak_customer_read", "contacts and accounts",
                     _lister("customers")),
    NeededPermission("Subscriptions", "rak_subscription_read", "MRR, subscription status",
                     _lister("subscriptions")),
    NeededPermission("Invoices", "rak_invoice_read", "failed payments, recoveries",
                     _lister("invoices")),
    NeededPermission("Charges", "rak_charge_read", "decline codes, payments",
                     _lister("charges")),
    NeededPermission("PaymentIntents", "rak_payment_intent_read", "payment retries",
                     _lister("payment_intents")),
    NeededPermission("Events", "rak_event_read", "the live sync",
                     _lister("events")),
    NeededPermission("Refunds", "rak_refund_read", "refund alerts", _lister("refunds")),
)


@dataclass(frozen=True)
class PermissionResult:
    resource: str
    permission: str
    api_name: str
    needed_for: str
    granted: bool
    detail: str = ""


@dataclass(frozen=True)
class KeyCheck:
    kind: KeyKind
    mode: str
    account_id: str
    account_name: str
    permissions: list[PermissionResult]
    warnings: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[PermissionResult]:
        return [p for p in self.permissions if not p.granted]

    @property
    def ok(self) -> bool:
        return not self.missing


class KeyRejected(Exception):
    """Stripe refused the key itself (invalid, expired, revoked) or could not be reached."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason  # "invalid" | "expired" | "unreachable" | "error"


_ACCOUNT_IN_MESSAGE = re.compile(r"on account '(acct_[A-Za-z0-9]+)'")
_RAK_IN_MESSAGE = re.compile(r"'(rak_[a-z_]+)'")


def _error_body(exc: stripe.StripeError) -> dict[str, Any]:
    # stripe-python leaves .code None for several classes: read the body.
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    err = body.get("error")
    return err if isinstance(err, dict) else {}


def _rejection(exc: stripe.StripeError, key: str, api_base: str) -> KeyRejected:
    import stripe

    if isinstance(exc, stripe.AuthenticationError):
        body = _error_body(exc)
        if body.get("code") == "api_key_expired":
            return KeyRejected(f"Stripe says the key {mask(key)} has expired. Roll or create a "
                               "key in the Dashboard (Developers > API keys) and enter it.",
                               "expired")
        return KeyRejected(f"Stripe does not accept the key {mask(key)}: it is mistyped, "
                           "deleted or rolled. Copy it again from the Dashboard "
                           "(Developers > API keys).", "invalid")
    if isinstance(exc, stripe.APIConnectionError):
        return KeyRejected(f"Could not reach Stripe at {api_base}: check the network or proxy "
                           "(and tls.ca_bundle behind a TLS-inspecting proxy), then try again.",
                           "unreachable")
    return KeyRejected(f"Stripe answered with an error ({type(exc).__name__}, HTTP "
                       f"{exc.http_status}); try again in a minute.", "error")


def _account_name(account: Any) -> str:
    def pick(obj: Any, *path: str) -> str:
        for name in path:
            obj = getattr(obj, name, None) if obj is not None else None
        return str(obj) if obj else ""

    return (pick(account, "settings", "dashboard", "display_name")
            or pick(account, "business_profile", "name") or pick(account, "email"))


def check_key(key: str, *, api_base: str, ca_bundle: str = "",
              client: stripe.StripeClient | None = None) -> KeyCheck:
    """Classify, then ask Stripe: the account, test or live, and every read the sync needs.

    Raises KeyRefused (never sent to Stripe) or KeyRejected (Stripe said no to the key)."""
    import stripe

    from lc_console.stripe.client import make_client

    key = key.strip()
    kc = classify(key)
    client = client or make_client(key, api_base=api_base, ca_bundle=ca_bundle,
                                   max_network_retries=1)
    warnings = [kc.warning] if kc.warning else []
    account_id = account_name = ""
    try:
        account = client.v1.accounts.retrieve_current()
        account_id = str(getattr(account, "id", "") or "")
        account_name = _account_name(account)
    except stripe.PermissionError as exc:
        # A restricted key without account access: the 403 message still names the account.
        m = _ACCOUNT_IN_MESSAGE.search(str(_error_body(exc).get("message") or ""))
        account_id = m.group(1) if m else ""
    except stripe.StripeError as exc:
        raise _rejection(exc, key, api_base) from None

    results: list[PermissionResult] = []
    livemodes: set[bool] = set()
    for need in NEEDED:
        try:
            page = need.probe(client)
        except stripe.PermissionError as exc:
            message = str(_error_body(exc).get("message") or "")
            named = _RAK_IN_MESSAGE.search(message)
            if not account_id:
                m = _ACCOUNT_IN_MESSAGE.search(message)
                account_id = m.group(1) if m else ""
            api_name = named.group(1) if named else need.api_name
            results.append(PermissionResult(need.resource, need.permission, api_name,
                                            need.needed_for, False,
                                            f"add '{need.permission}' ({api_name})"))
            continue
        except stripe.StripeError as exc:
            raise _rejection(exc, key, api_base) from None
        for item in list(getattr(page, "data", []) or [])[:1]:
            lm = getattr(item, "livemode", None)
            if isinstance(lm, bool):
                livemodes.add(lm)
        results.append(PermissionResult(need.resource, need.permission, need.api_name,
                                        need.needed_for, True, "granted"))
    if livemodes and livemodes != {kc.mode == "live"}:
        warnings.append(f"The key says {kc.mode} mode but Stripe returned "
                        f"{'live' if True in livemodes else 'test'} objects.")
    return KeyCheck(kind=kc.kind, mode=kc.mode, account_id=account_id,
                    account_name=account_name, permissions=results, warnings=warnings)
