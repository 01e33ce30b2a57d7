"""Source value names -> Salesforce fields and conflict policies.

Mapped values ("account.mrr", "contact.first_name", ...) follow `RulesSettings.fields`, which
the admin edits (target "Object.Field" and policy). Structural values are fixed, because the
records would stop being idempotent or valid if they moved: upsert keys, record types, the
Name / Website a new Account is created with, the fields of Expansion opportunities, Tasks
and platform events. Their source names start with "fixed:" in dry runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from lc_console.settings import FieldRule
from lc_console.sync.model import KEY_POLICY, DesiredField, Value, Version


class MappingError(ValueError):
    """A field rule that cannot be applied; the message names the setting and the fix."""


# source -> (object, field, policy) for values the admin cannot remap.
FIXED: dict[str, tuple[str, str, str]] = {
    "recovery.id": ("LostChurn_Recovery__c", "Recovery_ID__c", KEY_POLICY),
    "opportunity.recovery_id": ("Opportunity", "LostChurn_Recovery_ID__c", KEY_POLICY),
    "opportunity.record_type": ("Opportunity", "RecordTypeId", "fill_if_empty"),
    "account.name": ("Account", "Name", "fill_if_empty"),
    "account.website": ("Account", "Website", "fill_if_empty"),
    # Expansion opportunities are created Closed Won; afterwards they belong to sales.
    "expansion.key": ("Opportunity", "LostChurn_Recovery_ID__c", KEY_POLICY),
    "expansion.record_type": ("Opportunity", "RecordTypeId", "fill_if_empty"),
    "expansion.name": ("Opportunity", "Name", "fill_if_empty"),
    "expansion.amount": ("Opportunity", "Amount", "fill_if_empty"),
    "expansion.stage": ("Opportunity", "StageName", "fill_if_empty"),
    "expansion.close_date": ("Opportunity", "CloseDate", "fill_if_empty"),
    "expansion.account_id": ("Opportunity", "AccountId", "fill_if_empty"),
}


def resolve(source: str, sobject: str, rules: Mapping[str, FieldRule]) -> tuple[str, str, str]:
    """(field, policy, source label) for a source value written to `sobject`."""
    if source in FIXED:
        obj, field, policy = FIXED[source]
        if obj != sobject:
            raise MappingError(f"internal: {source} belongs to {obj}, not {sobject}")
        return field, policy, f"fixed:{source}"
    rule = rules.get(source)
    if rule is None:
        raise MappingError(
            f"rules.fields.{source} is missing from the settings; add it back "
            f"(`lc-console config` or the Field mapping screen) or reset the field mapping")
    obj, _, field = rule.target.partition(".")
    if obj != sobject or not field:
        raise MappingError(
            f"rules.fields.{source}.target is {rule.target!r}, but {source} is written to "
            f"{sobject}; set it to a {sobject} field")
    return field, rule.policy, source


def build_fields(sobject: str, values: Mapping[str, Value], rules: Mapping[str, FieldRule],
                 version: Version) -> dict[str, DesiredField]:
    """DesiredFields of one record from source-named values (None values are kept)."""
    out: dict[str, DesiredField] = {}
    for source, value in values.items():
        field, policy, label = resolve(source, sobject, rules)
        if field in out and out[field].source != label:
            raise MappingError(
                f"rules.fields: {out[field].source} and {label} both target {sobject}.{field}; "
                f"map one of them to another field")
        out[field] = DesiredField(field, value, label, policy, version)
    return out
