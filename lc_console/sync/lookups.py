"""The SOQL of a batch's bulk reads, and how their rows map back to records: pure.

Round 1 (before deriving): the candidate Contacts and Accounts of the batch's customers
(`matching.lookup_keys`), selecting the matching fields and every field the sync may write,
so the same rows serve matching and conflict decisions. Round 2 (after deriving): the current
values of the other records of the batch (recovery opportunities and recovery records), by
their external ids. Each query stays under `MAX_WHERE_CHARS` so that it fits Salesforce's
URI and SOQL length limits; the engine sends a round's queries in one composite request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lc_console.salesforce.writer import in_clause, soql_quote
from lc_console.sync import matching
from lc_console.sync.describe import ObjectInfo
from lc_console.sync.model import ExternalKey, IdKey, RecordKey

MAX_WHERE_CHARS = 6000

CONTACT_MATCH_FIELDS = ("Id", "Email", "CreatedDate", "AccountId", "LostChurn_ID__c",
                        "FirstName", "LastName")
ACCOUNT_MATCH_FIELDS = ("Id", "Name", "Website", "CreatedDate", "OwnerId",
                        "LostChurn_Stripe_Customer_ID__c", "LostChurn_Payment_Health__c",
                        "LostChurn_Churn_Risk_Flag__c")


def select_list(info: ObjectInfo | None, wanted: Iterable[str]) -> list[str]:
    """The wanted fields that exist in the org (Id first), in a stable order."""
    names = ["Id", *sorted(set(wanted) - {"Id"})]
    if info is None:
        return ["Id"]
    out = []
    for name in names:
        f = info.field(name)
        if f is not None and f.name not in out:
            out.append(f.name)
    return out


def _chunks(clauses: Sequence[str], limit: int = MAX_WHERE_CHARS) -> list[list[str]]:
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for clause in clauses:
        if current and size + len(clause) + 4 > limit:
            out.append(current)
            current, size = [], 0
        current.append(clause)
        size += len(clause) + 4
    if current:
        out.append(current)
    return out


def _in_terms(field: str, values: Iterable[str], per_term: int = 100) -> list[str]:
    vals = sorted(set(values))
    return [f"{field} IN {in_clause(vals[i:i + per_term])}" for i in range(0, len(vals), per_term)]


def _queries(sobject: str, fields: Sequence[str], terms: Sequence[str]) -> list[str]:
    head = f"SELECT {', '.join(fields)} FROM {sobject} WHERE "
    return [head + " OR ".join(group) for group in _chunks(terms)]


def candidate_queries(keys: matching.LookupKeys, contact_fields: Sequence[str],
                      account_fields: Sequence[str]) -> list[tuple[str, str]]:
    """[(sobject, soql)] of round 1."""
    out: list[tuple[str, str]] = []
    contact_terms = (_in_terms("Email", keys.emails)
                     + _in_terms("LostChurn_ID__c", keys.customer_ids))
    if contact_terms and "LostChurn_ID__c" in contact_fields:
        out += [("Contact", q) for q in _queries("Contact", contact_fields, contact_terms)]
    elif keys.emails:
        out += [("Contact", q) for q in _queries("Contact", contact_fields,
                                                 _in_terms("Email", keys.emails))]
    account_terms: list[str] = []
    if "LostChurn_Stripe_Customer_ID__c" in account_fields:
        account_terms += _in_terms("LostChurn_Stripe_Customer_ID__c", keys.customer_ids)
    account_terms += _in_terms("Id", keys.account_ids)
    account_terms += _in_terms("Name", keys.domains)
    account_terms += [f"Website LIKE {soql_quote(matching.website_like_pattern(d))}"
                      for d in sorted(keys.domains)]
    if account_terms:
        out += [("Account", q) for q in _queries("Account", account_fields, account_terms)]
    return out


def current_queries(sobject: str, keys: Iterable[RecordKey],
                    fields: Sequence[str]) -> list[str]:
    """Round 2: the records of `sobject` addressed by these keys."""
    by_field: dict[str, set[str]] = {}
    for key in keys:
        if isinstance(key, ExternalKey):
            by_field.setdefault(key.field, set()).add(key.value)
        else:
            by_field.setdefault("Id", set()).add(key.id)
    terms: list[str] = []
    for name in sorted(by_field):
        terms += _in_terms(name, by_field[name])
    return _queries(sobject, fields, terms) if terms else []


def index_rows(sobject: str, rows: Iterable[Mapping[str, Any]],
               keys: Iterable[RecordKey]) -> dict[tuple[str, RecordKey], Mapping[str, Any]]:
    """The row each key addresses. External ids compare case-insensitively (Salesforce's
    default for text external ids); when several rows match, the oldest wins."""
    rows = sorted(rows, key=lambda r: (str(r.get("CreatedDate") or ""), str(r.get("Id"))))
    by_id = {str(r["Id"])[:15]: r for r in rows if r.get("Id")}
    by_ext: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in rows:
        for name, value in row.items():
            if isinstance(value, str) and value:
                by_ext.setdefault((name.lower(), value.lower()), row)
    out: dict[tuple[str, RecordKey], Mapping[str, Any]] = {}
    for key in keys:
        if isinstance(key, IdKey):
            found = by_id.get(key.id[:15])
        else:
            found = by_ext.get((key.field.lower(), key.value.lower()))
        if found is not None:
            out[(sobject, key)] = found
    return out


def task_doubt_query(subjects: Iterable[str], since: float) -> str | None:
    """Tasks that an interrupted create may have left: by subject, created since `since`."""
    subjects = sorted(set(subjects))
    if not subjects:
        return None
    moment = dt.datetime.fromtimestamp(since, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f"SELECT Id, Subject, Description FROM Task WHERE Subject IN {in_clause(subjects)}"
            f" AND CreatedDate >= {moment}")
