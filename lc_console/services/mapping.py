"""Field mapping and conflict rules: the editable table behind the Mapping screen.

Every value flows one way, Stripe -> Salesforce (the console never reads a value back into
Stripe). For each source value the admin picks the target field and the conflict policy;
`fill_if_empty` is refused for values that change over a record's life (a status or an
amount filled once would stay at its first value forever). Targets are checked offline
(Object.Field, on the object the value belongs to, not mapped twice) and, when connected,
against the org's describe (the field exists, its type can hold the value).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lc_console import settings
from lc_console.salesforce.schema_manifest import DESCRIBE_TYPES, MANIFEST
from lc_console.settings import POLICIES, RECOVERY_STATUSES, FieldRule, Settings

DIRECTION = "Stripe → Salesforce"

# Which object each group of source values is written to.
OBJECTS = {"contact": "Contact", "account": "Account", "recovery": "LostChurn_Recovery__c",
           "opportunity": "Opportunity"}

# Values that change over a record's life: fill_if_empty would freeze them.
CHANGING = frozenset({
    "contact.mrr", "contact.recovery_count", "contact.churn_risk",
    "account.mrr", "account.clv", "account.clv_tier", "account.last_payment_date",
    "account.payment_health", "account.churn_risk_flag", "account.subscription_status",
    "recovery.status", "recovery.decline_code", "recovery.decline_category",
    "recovery.retry_count", "recovery.recovered_amount", "recovery.completed_at",
    "opportunity.amount", "opportunity.stage", "opportunity.close_date",
})

# Describe types of the standard fields the defaults use (LostChurn fields: the manifest).
_STANDARD_TYPES = {
    "Contact.Email": "email", "Contact.FirstName": "string", "Contact.LastName": "string",
    "Contact.AccountId": "reference", "Opportunity.Name": "string",
    "Opportunity.Amount": "currency", "Opportunity.StageName": "picklist",
    "Opportunity.CloseDate": "date", "Opportunity.AccountId": "reference",
}

# A value of the left type can be written to fields of these describe types.
COMPATIBLE: dict[str, frozenset[str]] = {
    "string": frozenset({"string", "textarea", "picklist", "email", "phone", "url"}),
    "email": frozenset({"email", "string"}),
    "picklist": frozenset({"picklist", "string"}),
    "double": frozenset({"double", "int", "currency", "percent"}),
    "currency": frozenset({"currency", "double"}),
    "date": frozenset({"date", "datetime"}),
    "datetime": frozenset({"datetime"}),
    "boolean": frozenset({"boolean"}),
    "reference": frozenset({"reference"}),
}


def allowed_policies(source: str) -> tuple[str, ...]:
    if source in CHANGING:
        return tuple(p for p in POLICIES if p != "fill_if_empty")
    return POLICIES


def value_type(source: str) -> str:
    """The describe type the value is made for (that of its default target)."""
    target = settings.default_field_rules()[source].target if source in \
        settings.default_field_rules() else ""
    if target in _STANDARD_TYPES:
        return _STANDARD_TYPES[target]
    try:
        return DESCRIBE_TYPES[MANIFEST.field(target).kind]
    except (KeyError, ValueError, StopIteration):
        return "string"


@dataclass
class Check:
    ok: bool | None  # None: not checked against the org
    text: str


@dataclass
class Draft:
    """The settings being edited; nothing is written until `save`."""

    fields: dict[str, FieldRule]
    stage_mapping: dict[str, str]
    free_mail_domains: list[str]
    throttle_percent: int
    clv_high: float
    clv_mid: float
    lifespan_months: int
    checks: dict[str, Check] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, cfg: Settings) -> Draft:
        return cls(fields=copy.deepcopy(cfg.rules.fields),
                   stage_mapping=dict(cfg.rules.stage_mapping),
                   free_mail_domains=list(cfg.rules.free_mail_domains),
                   throttle_percent=cfg.sync.throttle_threshold_percent,
                   clv_high=cfg.rules.clv_high_threshold, clv_mid=cfg.rules.clv_mid_threshold,
                   lifespan_months=cfg.rules.lifespan_months)

    def set_target(self, source: str, target: str) -> None:
        self.fields[source] = FieldRule(target=target.strip(), policy=self.fields[source].policy)
        self.checks.pop(source, None)

    def set_policy(self, source: str, policy: str) -> None:
        if policy not in allowed_policies(source):
            raise ValueError(f"{source}: {policy} is not allowed (the value changes over time; "
                             "use lostchurn_wins or salesforce_wins)")
        self.fields[source] = FieldRule(target=self.fields[source].target, policy=policy)

    def next_policy(self, source: str) -> str:
        allowed = allowed_policies(source)
        current = self.fields[source].policy
        policy = allowed[(allowed.index(current) + 1) % len(allowed)] if current in allowed \
            else allowed[0]
        self.set_policy(source, policy)
        return policy

    def apply(self, cfg: Settings) -> Settings:
        out = copy.deepcopy(cfg)
        out.rules.fields = copy.deepcopy(self.fields)
        out.rules.stage_mapping = dict(self.stage_mapping)
        out.rules.free_mail_domains = list(self.free_mail_domains)
        out.sync.throttle_threshold_percent = self.throttle_percent
        out.rules.clv_high_threshold = self.clv_high
        out.rules.clv_mid_threshold = self.clv_mid
        out.rules.lifespan_months = self.lifespan_months
        return out


def offline_problems(draft: Draft) -> dict[str, str]:
    """source -> what is wrong, without asking the org."""
    problems: dict[str, str] = {}
    seen: dict[str, str] = {}
    for source, rule in draft.fields.items():
        obj, dot, fld = rule.target.partition(".")
        expected = OBJECTS.get(source.split(".", 1)[0], "")
        if not dot or not obj or not fld or "." in fld:
            problems[source] = f"{rule.target or '(empty)'} is not Object.Field"
        elif expected and obj != expected:
            problems[source] = f"must be a field of {expected}"
        elif rule.policy not in allowed_policies(source):
            problems[source] = f"{rule.policy} is not allowed for a value that changes"
        elif rule.target in seen:
            problems[source] = f"{seen[rule.target]} writes this field too"
        else:
            seen[rule.target] = source
    return problems


def list_problems(draft: Draft) -> list[str]:
    """Problems of the stage mapping, domains and thresholds (settings' own validation)."""
    out = []
    for status in RECOVERY_STATUSES:
        if not draft.stage_mapping.get(status, "").strip():
            out.append(f"Stage for {status} is empty.")
    bad = [d for d in draft.free_mail_domains if "." not in d or " " in d or "@" in d]
    if bad:
        out.append(f"{bad[0]} is not a domain (write it as example.com).")
    if not 1 <= draft.throttle_percent <= 100:
        out.append("Throttle percent must be between 1 and 100.")
    if draft.clv_mid < 0 or draft.clv_high < 0:
        out.append("CLV tiers cannot be negative.")
    elif draft.clv_mid > draft.clv_high:
        out.append("The mid CLV tier must not exceed the high tier.")
    if not 1 <= draft.lifespan_months <= 600:
        out.append("Lifespan must be between 1 and 600 months.")
    return out


Describe = Mapping[str, Mapping[str, dict[str, Any]]]  # object -> field -> describe entry


def check_against(draft: Draft, describe: Describe | None) -> dict[str, Check]:
    """A Check per source: offline problems first, then the org's describe when given."""
    offline = offline_problems(draft)
    checks: dict[str, Check] = {}
    for source, rule in draft.fields.items():
        if source in offline:
            checks[source] = Check(False, offline[source])
            continue
        if describe is None:
            checks[source] = Check(None, "not checked (offline)")
            continue
        obj, _, fld = rule.target.partition(".")
        fields = describe.get(obj)
        if fields is None:
            checks[source] = Check(False, f"{obj} is not in the org (install first?)")
            continue
        found = fields.get(fld)
        if found is None:
            checks[source] = Check(False, f"no field {fld} on {obj}")
            continue
        need = value_type(source)
        have = str(found.get("type", ""))
        if have not in COMPATIBLE.get(need, frozenset({need})):
            checks[source] = Check(False, f"is {have}, needs {need}")
        elif not found.get("updateable", True) and not found.get("createable", True):
            checks[source] = Check(False, "read-only for the connected user")
        else:
            checks[source] = Check(True, "ok")
    return checks


def stage_problems(draft: Draft, describe: Describe | None) -> list[str]:
    if describe is None:
        return []
    stage = (describe.get("Opportunity") or {}).get("StageName") or {}
    values = {v.get("value") for v in stage.get("picklistValues", []) if v.get("active", True)}
    if not values:
        return []
    return [f"Stage {s!r} (for {status}) is not an Opportunity stage in the org."
            for status, s in draft.stage_mapping.items() if s not in values]


def read_describe(run: Callable[[Callable[[Any], Any]], Any], objects: set[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """object -> field name -> describe entry, for the objects that exist in the org."""
    from simple_salesforce.exceptions import SalesforceResourceNotFound

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in sorted(objects):
        try:
            described = run(lambda sf, o=obj: getattr(sf, o).describe())
        except SalesforceResourceNotFound:
            continue
        out[obj] = {f["name"]: f for f in described.get("fields", [])}
    return out


def describe_for_profile(profile: str, draft: Draft) -> dict[str, dict[str, dict[str, Any]]]:
    from lc_console.services.install import target_for_profile

    target = target_for_profile(profile)
    objects = {r.target.partition(".")[0] for r in draft.fields.values()} | {"Opportunity"}
    return read_describe(target.run, {o for o in objects if o})


def save(profile: str, draft: Draft) -> Settings:
    """Validate as the settings file is validated, then write it; raises SettingsError or
    ValueError with a message naming the problem."""
    problems = offline_problems(draft)
    if problems:
        source, text = next(iter(problems.items()))
        raise ValueError(f"{source}: {text}")
    listed = list_problems(draft)
    if listed:
        raise ValueError(listed[0])
    cfg = draft.apply(settings.load(profile))
    checked = settings.from_dict(settings.to_dict(cfg))  # the file's own validation
    settings.save(profile, checked)
    return checked
