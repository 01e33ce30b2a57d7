"""Typed settings of one profile, stored as TOML (read with tomllib, written with tomli-w).

The file never holds a secret: tokens and API keys live in the OS keyring (secrets.py).
Every key is validated on load, so a hand-edited file with a typo or a value out of range
gives an error naming the file, the key and what is allowed, instead of being overwritten.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from lc_console import paths

# --- value constraints --------------------------------------------------------------------


def _choice(*allowed: str) -> dict[str, Any]:
    return {"choices": allowed}


def _range(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"range": (lo, hi)}


POLICIES = ("lostchurn_wins", "salesforce_wins", "fill_if_empty")
"""Conflict policies for a field the console writes.

lostchurn_wins   always write the value derived from Stripe.
salesforce_wins  write only while nobody changed the field in Salesforce since the console
                 last wrote it (Salesforce's current value == the last value written).
fill_if_empty    write only when the field is empty in Salesforce.
"""

RECOVERY_STATUSES = ("Started", "Retrying", "Succeeded", "Exhausted")

ENVIRONMENT_URLS = {
    "production": "https://login.salesforce.com",
    "sandbox": "https://test.salesforce.com",
}


@dataclass
class TLSSettings:
    # An extra CA file trusted by every HTTP client (corporate TLS-inspecting proxies,
    # the local Salesforce sandbox). Certificate checks are never disabled.
    ca_bundle: str = ""


@dataclass
class SalesforceSettings:
    environment: str = field(default="production", metadata=_choice("production", "sandbox", "custom"))
    login_url: str = ENVIRONMENT_URLS["production"]
    client_id: str = ""
    callback_port: int = field(default=1717, metadata=_range(1024, 65535))
    callback_ports: list[int] = field(default_factory=lambda: [1717, 1718, 1719])
    oauth_timeout_seconds: int = field(default=300, metadata=_range(10, 3600))
    api_version: str = "62.0"
    # Filled in by `connect salesforce`; not secrets.
    instance_url: str = ""
    org_id: str = ""
    org_name: str = ""
    is_sandbox: bool = False
    user_id: str = ""
    username: str = ""
    # Set when Salesforce refused the refresh token (revoked/expired): the sync pauses and
    # the console offers Reconnect. Cleared by a successful `connect salesforce`.
    connection_expired: bool = False


@dataclass
class StripeSettings:
    mode: str = field(default="test", metadata=_choice("test", "live"))
    account_id: str = ""
    account_name: str = ""
    api_base: str = "https://api.stripe.com"


@dataclass
class SyncSettings:
    poll_interval_seconds: float = field(default=2.0, metadata=_range(0.1, 3600))
    batch_window_seconds: float = field(default=2.0, metadata=_range(0.0, 600))
    max_batch_size: int = field(default=200, metadata=_range(1, 200))
    throttle_threshold_percent: int = field(default=80, metadata=_range(1, 100))
    bulk_threshold: int = field(default=2000, metadata=_range(1, 10_000_000))
    journal_retention_days: int = field(default=90, metadata=_range(1, 3650))
    reconcile_schedule: str = field(default="off", metadata=_choice("off", "daily", "weekly"))


@dataclass
class FieldRule:
    """Where one value derived from Stripe goes in Salesforce, and who wins a conflict."""

    target: str  # "Object.Field"
    policy: str = field(default="lostchurn_wins", metadata=_choice(*POLICIES))


def _rule(target: str, policy: str = "lostchurn_wins") -> FieldRule:
    return FieldRule(target=target, policy=policy)


def default_field_rules() -> dict[str, FieldRule]:
    """Source value name -> Salesforce target. Names are those of the install issue."""
    rc = "LostChurn_Recovery__c"
    return {
        # Contact (matched by email). Identity fields default to fill_if_empty so that a
        # person's corrections in Salesforce are never overwritten.
        "contact.email": _rule("Contact.Email", "fill_if_empty"),
        "contact.first_name": _rule("Contact.FirstName", "fill_if_empty"),
        "contact.last_name": _rule("Contact.LastName", "fill_if_empty"),
        "contact.account_id": _rule("Contact.AccountId", "fill_if_empty"),
        "contact.customer_id": _rule("Contact.LostChurn_ID__c"),
        "contact.mrr": _rule("Contact.LostChurn_MRR__c"),
        "contact.recovery_count": _rule("Contact.LostChurn_Recovery_Count__c"),
        "contact.churn_risk": _rule("Contact.LostChurn_Churn_Risk__c"),
        # Account billing health.
        "account.customer_id": _rule("Account.LostChurn_Stripe_Customer_ID__c"),
        "account.mrr": _rule("Account.LostChurn_MRR__c"),
        "account.clv": _rule("Account.LostChurn_CLV__c"),
        "account.clv_tier": _rule("Account.LostChurn_CLV_Tier__c"),
        "account.last_payment_date": _rule("Account.LostChurn_Last_Payment_Date__c"),
        "account.payment_health": _rule("Account.LostChurn_Payment_Health__c"),
        "account.churn_risk_flag": _rule("Account.LostChurn_Churn_Risk_Flag__c"),
        "account.subscription_status": _rule("Account.LostChurn_Subscription_Status__c"),
        # Recovery records.
        "recovery.status": _rule(f"{rc}.Status__c"),
        "recovery.decline_code": _rule(f"{rc}.Decline_Code__c"),
        "recovery.decline_category": _rule(f"{rc}.Decline_Category__c"),
        "recovery.retry_count": _rule(f"{rc}.Retry_Count__c"),
        "recovery.recovered_amount": _rule(f"{rc}.Recovered_Amount__c"),
        "recovery.started_at": _rule(f"{rc}.Started_At__c"),
        "recovery.completed_at": _rule(f"{rc}.Completed_At__c"),
        "recovery.contact": _rule(f"{rc}.Contact__c"),
        "recovery.opportunity": _rule(f"{rc}.Opportunity__c"),
        # Recovery opportunity. Sales fields belong to the sales team once they touch them.
        "opportunity.name": _rule("Opportunity.Name", "fill_if_empty"),
        "opportunity.amount": _rule("Opportunity.Amount"),
        "opportunity.stage": _rule("Opportunity.StageName", "salesforce_wins"),
        "opportunity.close_date": _rule("Opportunity.CloseDate", "salesforce_wins"),
        "opportunity.account_id": _rule("Opportunity.AccountId", "fill_if_empty"),
    }


def default_stage_mapping() -> dict[str, str]:
    return {
        "Started": "Prospecting",
        "Retrying": "Negotiation/Review",
        "Succeeded": "Closed Won",
        "Exhausted": "Closed Lost",
    }


DEFAULT_FREE_MAIL_DOMAINS = (
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com",
    "msn.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com", "icloud.com", "me.com",
    "mac.com", "aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.com", "gmx.de",
    "gmx.net", "web.de", "mail.com", "zoho.com", "yandex.com", "yandex.ru", "fastmail.com",
    "hey.com", "tutanota.com", "qq.com", "163.com", "126.com",
)


@dataclass
class RulesSettings:
    stage_mapping: dict[str, str] = field(default_factory=default_stage_mapping)
    free_mail_domains: list[str] = field(default_factory=lambda: list(DEFAULT_FREE_MAIL_DOMAINS))
    clv_high_threshold: float = field(default=5000.0, metadata=_range(0, None))
    clv_mid_threshold: float = field(default=1000.0, metadata=_range(0, None))
    lifespan_months: int = field(default=24, metadata=_range(1, 600))
    health_window_days: int = field(default=90, metadata=_range(1, 3650))
    refund_review_threshold: float = field(default=500.0, metadata=_range(0, None))
    winback_task_days: int = field(default=14, metadata=_range(0, 365))
    fields: dict[str, FieldRule] = field(default_factory=default_field_rules)


@dataclass
class UISettings:
    theme: str = field(default="lc-dark", metadata=_choice("lc-dark", "lc-light"))
    # Steps of the setup wizard that are done, so that quitting mid-way resumes there.
    wizard_completed: list[str] = field(default_factory=list)


@dataclass
class Settings:
    tls: TLSSettings = field(default_factory=TLSSettings)
    salesforce: SalesforceSettings = field(default_factory=SalesforceSettings)
    stripe: StripeSettings = field(default_factory=StripeSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    ui: UISettings = field(default_factory=UISettings)


# --- errors -------------------------------------------------------------------------------


class SettingsError(Exception):
    """A settings file or value that cannot be used; the message says where and how to fix it."""

    def __init__(self, message: str, path: Path | None = None, key: str | None = None):
        super().__init__(message)
        self.path = path
        self.key = key


# --- conversion ---------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, str(tp)
    )


def _convert(value: Any, tp: Any, key: str, meta: typing.Mapping[str, Any]) -> Any:
    """Check `value` (as read from TOML) against the declared type and constraints."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise SettingsError(f"{key}: expected {_type_name(tp)}", key=key)
        return _build(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise SettingsError(f"{key}: expected {_type_name(tp)}", key=key)
        (item_tp,) = typing.get_args(tp)
        return [_convert(v, item_tp, f"{key}[{i}]", {}) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SettingsError(f"{key}: expected a table", key=key)
        _k_tp, v_tp = typing.get_args(tp)
        return {str(k): _convert(v, v_tp, f"{key}.{k}", {}) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        raise SettingsError(f"{key}: unsupported type", key=key)
    ok: bool
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            value = float(value)
    else:
        ok = isinstance(value, tp)
    if not ok:
        raise SettingsError(f"{key}: expected {_type_name(tp)}, got {value!r}", key=key)
    choices = meta.get("choices")
    if choices and value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise SettingsError(f"{key}: {value!r} is not allowed; use one of {allowed}", key=key)
    rng = meta.get("range")
    if rng:
        lo, hi = rng
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"between {lo} and {hi}" if lo is not None and hi is not None else (
                f"at least {lo}" if lo is not None else f"at most {hi}"
            )
            raise SettingsError(f"{key}: {value!r} is out of range; it must be {bounds}", key=key)
    return value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        where = f"{prefix}." if prefix else ""
        allowed = ", ".join(sorted(known))
        raise SettingsError(
            f"unknown key {where}{unknown[0]}; the keys allowed here are: {allowed}",
            key=f"{where}{unknown[0]}",
        )
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name in data:
            key = f"{prefix}.{name}" if prefix else name
            kwargs[name] = _convert(data[name], hints[name], key, f.metadata)
    obj = cls(**kwargs)
    if cls is RulesSettings:
        _check_rules(obj, prefix)
    return obj


def _check_rules(rules: RulesSettings, prefix: str) -> None:
    for status in rules.stage_mapping:
        if status not in RECOVERY_STATUSES:
            raise SettingsError(
                f"{prefix}.stage_mapping.{status}: unknown recovery status; use one of "
                + ", ".join(RECOVERY_STATUSES),
                key=f"{prefix}.stage_mapping.{status}",
            )
    for name, rule in rules.fields.items():
        if rule.target.count(".") != 1:
            raise SettingsError(
                f"{prefix}.fields.{name}.target: {rule.target!r} must be Object.Field",
                key=f"{prefix}.fields.{name}.target",
            )
    if rules.clv_mid_threshold > rules.clv_high_threshold:
        raise SettingsError(
            f"{prefix}.clv_mid_threshold must not exceed clv_high_threshold",
            key=f"{prefix}.clv_mid_threshold",
        )


def from_dict(data: dict[str, Any]) -> Settings:
    result: Settings = _build(Settings, data, "")
    return result


def to_dict(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


# --- file I/O -----------------------------------------------------------------------------


def load(profile: str) -> Settings:
    """Settings of `profile`; defaults when the file does not exist yet."""
    path = paths.config_file(profile)
    if not path.exists():
        return Settings()
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(
            f"{path}: not valid TOML ({exc}). Fix the file by hand or move it away to start "
            "from defaults; nothing was overwritten.",
            path=path,
        ) from exc
    try:
        return from_dict(data)
    except SettingsError as exc:
        raise SettingsError(
            f"{path}: {exc}. Fix it by hand or with `lc-console config set`; nothing was "
            "overwritten.",
            path=path,
            key=exc.key,
        ) from exc


def save(profile: str, settings: Settings) -> Path:
    """Write atomically (temp file + rename) with mode 0600."""
    path = paths.config_file(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = tomli_w.dumps(to_dict(settings)).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{profile}.", suffix=".toml.tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- dotted keys (config set) ---------------------------------------------------------------


def _parse_scalar(text: str, tp: Any, key: str) -> Any:
    if tp is str:
        return text
    if tp is bool:
        low = text.strip().lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise SettingsError(f"{key}: expected true or false, got {text!r}", key=key)
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise SettingsError(f"{key}: expected an integer, got {text!r}", key=key) from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise SettingsError(f"{key}: expected a number, got {text!r}", key=key) from None
    raise SettingsError(f"{key}: cannot be set from the command line", key=key)


def _split_dotted(data: dict[str, Any], dotted: str) -> list[str]:
    """Split a dotted key. Table keys may contain dots themselves (rules.fields has
    "contact.email"), so at each level the longest existing key wins."""
    parts = dotted.split(".")
    out: list[str] = []
    node: Any = data
    i = 0
    while i < len(parts):
        j = i + 1
        if isinstance(node, dict):
            j = next((k for k in range(len(parts), i, -1) if ".".join(parts[i:k]) in node), j)
        name = ".".join(parts[i:j])
        out.append(name)
        node = node.get(name) if isinstance(node, dict) else None
        i = j
    return out


def set_value(settings: Settings, dotted: str, text: str) -> Settings:
    """Return new settings with `dotted` set from its text form, validated as the file is."""
    data = to_dict(settings)
    parts = _split_dotted(data, dotted)
    cls: Any = Settings
    node: Any = data
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        if dataclasses.is_dataclass(cls):
            hints = typing.get_type_hints(cls)
            if part not in hints:
                allowed = ", ".join(sorted(hints))
                raise SettingsError(f"unknown key {here}; allowed here: {allowed}", key=here)
            tp = hints[part]
        elif typing.get_origin(cls) is dict:
            tp = typing.get_args(cls)[1]
        else:
            raise SettingsError(f"{here}: not a table", key=here)
        last = i == len(parts) - 1
        if last:
            origin = typing.get_origin(tp)
            if origin is list:
                (item_tp,) = typing.get_args(tp)
                items = [t.strip() for t in text.split(",") if t.strip()]
                node[part] = [_parse_scalar(t, item_tp, here) for t in items]
            elif dataclasses.is_dataclass(tp) or origin is dict:
                raise SettingsError(f"{here} is a table; set one of its keys", key=here)
            else:
                node[part] = _parse_scalar(text, tp, here)
        else:
            if part not in node:
                if typing.get_origin(cls) is dict and tp is FieldRule:
                    raise SettingsError(f"unknown key {here}", key=here)
                node[part] = {}
            node = node[part]
            cls = tp
    return from_dict(data)


def get_value(settings: Settings, dotted: str) -> Any:
    node: Any = to_dict(settings)
    for part in _split_dotted(node, dotted):
        if not isinstance(node, dict) or part not in node:
            raise SettingsError(f"unknown key {dotted}", key=dotted)
        node = node[part]
    return node
