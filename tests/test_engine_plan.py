"""sync/plan.py and sync/precheck.py: from derived records to the writes to send (pure)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from lc_console.sync import precheck
from lc_console.sync.describe import ObjectInfo
from lc_console.sync.model import (
    Derivation,
    DesiredField,
    DesiredRecord,
    ExternalKey,
    IdKey,
    Insert,
    RecordTypeRef,
    Ref,
    Version,
)
from lc_console.sync.plan import (
    TASK_REF_PREFIX,
    InsertState,
    OrgView,
    Stored,
    identities,
    plan_batch,
)

V1 = Version(1_700_000_000, "evt_1")
V2 = Version(1_700_000_100, "evt_2")


def _field(name: str, type_: str = "string", **kw: Any) -> dict[str, Any]:
    base = {"name": name, "type": type_, "length": kw.pop("length", 255), "nillable": True,
            "createable": True, "updateable": True, "defaultedOnCreate": False,
            "picklistValues": [], "restrictedPicklist": False, "referenceTo": [],
            "relationshipName": None, "precision": 0, "scale": 0}
    base.update(kw)
    return base


def _picklist(name: str, values: list[str]) -> dict[str, Any]:
    return _field(name, "picklist", restrictedPicklist=True,
                  picklistValues=[{"value": v, "active": True} for v in values])


DESCRIBES = {
    "Account": ObjectInfo.from_describe({"name": "Account", "fields": [
        _field("Id", "id", createable=False, updateable=False, nillable=False,
               defaultedOnCreate=True),
        _field("Name", nillable=False), _field("Website"),
        _field("LostChurn_Stripe_Customer_ID__c", externalId=True),
        _field("LostChurn_MRR__c", "currency", precision=16, scale=2),
        _picklist("LostChurn_Payment_Health__c", ["Green", "Yellow", "Red"]),
        _field("OwnerId", "reference", referenceTo=["User"], relationshipName="Owner",
               nillable=False, defaultedOnCreate=True),
    ]}),
    "Contact": ObjectInfo.from_describe({"name": "Contact", "fields": [
        _field("Id", "id", createable=False, updateable=False),
        _field("LastName", nillable=False, length=80), _field("FirstName", length=40),
        _field("Email", "email", length=80), _field("LostChurn_ID__c", externalId=True),
        _field("AccountId", "reference", referenceTo=["Account"], relationshipName="Account"),
        _field("CreatedDate", "datetime", createable=False, updateable=False),
    ]}),
    "Opportunity": ObjectInfo.from_describe({"name": "Opportunity", "fields": [
        _field("Name", nillable=False, length=120), _field("CloseDate", "date", nillable=False),
        _picklist("StageName", ["Prospecting", "Closed Won"]) | {"nillable": False},
        _field("LostChurn_Recovery_ID__c", externalId=True),
        _field("RecordTypeId", "reference", referenceTo=["RecordType"]),
    ], "recordTypeInfos": [{"developerName": "LostChurn_Recovery", "recordTypeId":
                            "0128d0000000002AAA", "active": True}]}),
    "Task": ObjectInfo.from_describe({"name": "Task", "fields": [
        _field("Subject"), _field("Description", "textarea", length=32000),
        _field("WhatId", "reference", referenceTo=["Account", "Opportunity"],
               relationshipName="What"),
        _field("WhoId", "reference", referenceTo=["Contact"], relationshipName="Who"),
        _picklist("Priority", ["High", "Normal"]) | {"nillable": False,
                                                      "defaultedOnCreate": True},
    ]}),
}


def rec(sobject: str, key: Any, values: dict[str, Any], version: Version = V1,
        policies: dict[str, str] | None = None, customer: str = "cus_1") -> DesiredRecord:
    policies = policies or {}
    fields = {}
    for name, value in values.items():
        policy = policies.get(name, "lostchurn_wins")
        if isinstance(key, ExternalKey) and name == key.field:
            policy = "key"
        fields[name] = DesiredField(name, value, f"src.{name}", policy, version)
    return DesiredRecord(sobject, key, fields, customer, "test")


def der(*records: DesiredRecord, inserts: tuple[Insert, ...] = (),
        version: Version = V1) -> Derivation:
    return Derivation(version.event_id, "invoice.paid", version, "cus_1", tuple(records),
                      inserts)


ACCOUNT_KEY = ExternalKey("LostChurn_Stripe_Customer_ID__c", "cus_1")
CONTACT_KEY = ExternalKey("LostChurn_ID__c", "cus_1")


def account(mrr: Any = Decimal("49.00"), version: Version = V1, **extra: Any) -> DesiredRecord:
    return rec("Account", ACCOUNT_KEY, {"LostChurn_Stripe_Customer_ID__c": "cus_1",
                                        "Name": "acme.com", "LostChurn_MRR__c": mrr, **extra},
               version, {"Name": "fill_if_empty"})


def test_a_new_record_is_created_with_every_non_empty_field() -> None:
    plan = plan_batch([der(account(Website=None))], OrgView(DESCRIBES))
    (p,) = plan.records
    assert p.action == "create"
    assert p.payload == {"LostChurn_Stripe_Customer_ID__c": "cus_1", "Name": "acme.com",
                         "LostChurn_MRR__c": 49.0}
    assert p.versions["LostChurn_MRR__c"] == V1
    assert plan.counts() == {"Account": {"create": 1, "update": 0, "skip": 0, "reject": 0}}


def test_unchanged_records_are_skipped_but_their_versions_remembered() -> None:
    current = {("Account", ACCOUNT_KEY): {"Id": "001A00000000001AAA", "Name": "Acme Inc",
                                          "LostChurn_Stripe_Customer_ID__c": "cus_1",
                                          "LostChurn_MRR__c": 49}}
    (p,) = plan_batch([der(account())], OrgView(DESCRIBES, current)).records
    assert p.action == "skip" and p.payload == {}
    rules = {d.field: d.rule for d in p.decisions}
    assert rules == {"LostChurn_MRR__c": "unchanged", "LostChurn_Stripe_Customer_ID__c":
                     "unchanged", "Name": "fill_if_empty"}
    assert p.versions["LostChurn_MRR__c"] == V1 and p.sf_id == "001A00000000001AAA"


def test_an_update_sends_only_what_changed_plus_the_key() -> None:
    current = {("Account", ACCOUNT_KEY): {"Id": "001A00000000001AAA", "Name": "acme.com",
                                          "LostChurn_Stripe_Customer_ID__c": "cus_1",
                                          "LostChurn_MRR__c": 10}}
    (p,) = plan_batch([der(account())], OrgView(DESCRIBES, current)).records
    assert p.action == "update"
    assert p.payload == {"LostChurn_MRR__c": 49.0, "LostChurn_Stripe_Customer_ID__c": "cus_1"}


def test_coalesce_newest_wins_and_a_late_event_never_overwrites_a_newer_value() -> None:
    newer, older = account(Decimal("99"), V2), account(Decimal("10"), V1)
    (p,) = plan_batch([der(newer, version=V2), der(older)], OrgView(DESCRIBES)).records
    assert p.payload["LostChurn_MRR__c"] == 99.0
    # Across batches: the store remembers V2 for the field; V1 arrives late.
    current = {("Account", ACCOUNT_KEY): {"Id": "001A00000000001AAA", "Name": "acme.com",
                                          "LostChurn_Stripe_Customer_ID__c": "cus_1",
                                          "LostChurn_MRR__c": 99}}
    stored = {("Account", ACCOUNT_KEY): Stored({"LostChurn_MRR__c": 99.0},
                                               {"LostChurn_MRR__c": V2}, "001A00000000001AAA")}
    (late,) = plan_batch([der(older)], OrgView(DESCRIBES, current, stored)).records
    assert late.action == "skip"
    stale = next(d for d in late.decisions if d.field == "LostChurn_MRR__c")
    assert stale.rule == "stale" and "evt_2" in stale.reason


def test_salesforce_wins_detects_a_persons_edit_from_the_last_written_value() -> None:
    key = ExternalKey("LostChurn_Recovery_ID__c", "in_1")
    r = rec("Opportunity", key, {"LostChurn_Recovery_ID__c": "in_1", "StageName": "Closed Won"},
            policies={"StageName": "salesforce_wins"})
    current = {("Opportunity", key): {"Id": "006A00000000001AAA", "StageName": "Prospecting"}}
    edited = {("Opportunity", key): Stored({"StageName": "Qualification"}, {}, "006A00000000001AAA")}
    (p,) = plan_batch([der(r)], OrgView(DESCRIBES, current, edited)).records
    assert p.action == "skip"
    untouched = {("Opportunity", key): Stored({"StageName": "Prospecting"}, {}, "006A00000000001AAA")}
    (p,) = plan_batch([der(r)], OrgView(DESCRIBES, current, untouched)).records
    assert p.action == "update" and p.payload["StageName"] == "Closed Won"


def test_refs_become_ids_when_known_else_external_id_relationships() -> None:
    contact = rec("Contact", CONTACT_KEY, {"LostChurn_ID__c": "cus_1", "LastName": "Doe",
                                           "AccountId": Ref("Account", ACCOUNT_KEY)})
    (p,) = [x for x in plan_batch([der(contact)], OrgView(DESCRIBES)).records]
    assert p.payload["Account"] == {"LostChurn_Stripe_Customer_ID__c": "cus_1"}
    assert "AccountId" not in p.payload and p.refs["AccountId"] == Ref("Account", ACCOUNT_KEY)
    known = OrgView(DESCRIBES, {("Account", ACCOUNT_KEY): {"Id": "001A00000000001AAA"}})
    (p,) = plan_batch([der(contact)], known).records
    assert p.payload["AccountId"] == "001A00000000001AAA" and p.written["AccountId"] == "001A00000000001AAA"


def test_a_record_addressed_by_id_is_updated_by_id() -> None:
    r = rec("Contact", IdKey("003A00000000002AAA"), {"LostChurn_ID__c": "cus_1", "Email": "a@acme.com"})
    current = {("Contact", IdKey("003A00000000002AAA")): {"Id": "003A00000000002AAA", "Email": "a@acme.com"}}
    (p,) = plan_batch([der(r)], OrgView(DESCRIBES, current)).records
    assert p.operation == "update" and p.payload == {"Id": "003A00000000002AAA", "LostChurn_ID__c": "cus_1"}


def test_record_types_resolve_from_describe_and_a_missing_one_is_rejected() -> None:
    key = ExternalKey("LostChurn_Recovery_ID__c", "in_1")
    values = {"LostChurn_Recovery_ID__c": "in_1", "Name": "Recovery", "StageName": "Prospecting",
              "CloseDate": dt.date(2026, 1, 1),
              "RecordTypeId": RecordTypeRef("Opportunity", "LostChurn_Recovery")}
    (p,) = plan_batch([der(rec("Opportunity", key, values))], OrgView(DESCRIBES)).records
    assert p.payload["RecordTypeId"] == "0128d0000000002AAA"
    assert p.payload["CloseDate"] == "2026-01-01"
    values["RecordTypeId"] = RecordTypeRef("Opportunity", "Gone")
    (p,) = plan_batch([der(rec("Opportunity", key, values))], OrgView(DESCRIBES)).records
    assert p.action == "reject" and p.problem is not None
    assert p.problem.code == "INVALID_CROSS_REFERENCE_KEY" and "Gone" in p.problem.message


@pytest.mark.parametrize(("values", "code", "field"), [
    ({"LostChurn_Payment_Health__c": "Purple"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
     "LostChurn_Payment_Health__c"),
    ({"Website": "x" * 300}, "STRING_TOO_LONG", "Website"),
    ({"Nope__c": 1}, "INVALID_FIELD", "Nope__c"),
    ({"LostChurn_MRR__c": "lots"}, "INVALID_TYPE_ON_FIELD_IN_RECORD", "LostChurn_MRR__c"),
    ({"LostChurn_MRR__c": Decimal("1e20")}, "NUMBER_OUTSIDE_VALID_RANGE", "LostChurn_MRR__c"),
    ({"Name": None}, "REQUIRED_FIELD_MISSING", "Name"),
])
def test_precheck_rejects_what_salesforce_would_refuse(values: dict[str, Any], code: str,
                                                        field: str) -> None:
    r = account(**{k: v for k, v in values.items() if k != "Name"})
    if "Name" in values:
        fields = dict(r.fields)
        fields.pop("Name")
        r = DesiredRecord(r.sobject, r.key, fields, r.customer_id)
    (p,) = plan_batch([der(r)], OrgView(DESCRIBES)).records
    assert p.action == "reject" and p.problem is not None
    assert (p.problem.code, p.problem.fields) == (code, (field,))


def test_precheck_messages_and_the_other_checks() -> None:
    info = DESCRIBES["Contact"]
    problem = precheck.check(info, "Contact", {"LostChurn_ID__c": "c"}, create=True)
    assert problem == precheck.Problem("REQUIRED_FIELD_MISSING",
                                       "Required fields are missing: [LastName]", ("LastName",))
    problem = precheck.check(info, "Contact", {"Email": "not an email"}, create=False)
    assert problem is not None and problem.code == "INVALID_EMAIL_ADDRESS"
    problem = precheck.check(info, "Contact", {"AccountId": "nope"}, create=False)
    assert problem is not None and problem.code == "MALFORMED_ID"
    problem = precheck.check(info, "Contact", {"LastName": "Doe",
                                               "CreatedDate": dt.datetime(2026, 1, 1)},
                             create=True)
    assert problem is not None and problem.code == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert precheck.check(None, "Thing__c", {}, create=True).code == "INVALID_TYPE"  # type: ignore[union-attr]
    ok = {"LastName": "Doe", "Email": "a@b.co", "AccountId": Ref("Account", ACCOUNT_KEY)}
    assert precheck.check(info, "Contact", ok, create=True) is None


def _task(key: str = "task:1") -> Insert:
    return Insert("Task", {"Subject": "Payment failed", "Priority": "High",
                           "Description": "Health moved to Red.",
                           "WhatId": Ref("Account", ACCOUNT_KEY),
                           "WhoId": Ref("Contact", IdKey("003A00000000001AAA"))},
                  key, V1, "cus_1", "payment failure")


def test_inserts_are_created_once_with_their_reference_in_the_description() -> None:
    (p,) = plan_batch([der(inserts=(_task(),))], OrgView(DESCRIBES)).inserts
    assert p.action == "create"
    assert p.payload["What"] == {"attributes": {"type": "Account"},
                                 "LostChurn_Stripe_Customer_ID__c": "cus_1"}
    assert p.payload["WhoId"] == "003A00000000001AAA"
    assert p.payload["Description"] == "Health moved to Red.\n\n" + TASK_REF_PREFIX + "task:1"
    done = OrgView(DESCRIBES, inserts={("Task", "task:1"): InsertState(done=True)})
    assert plan_batch([der(inserts=(_task(), _task()))], done).inserts[0].action == "skip"
    found = OrgView(DESCRIBES, inserts={("Task", "task:1"): InsertState(in_doubt=True,
                                                                          found_id="00T1")})
    (p,) = plan_batch([der(inserts=(_task(),))], found).inserts
    assert (p.action, p.found_id) == ("found", "00T1")


def test_parents_are_sent_before_children_and_identities_include_lookup_targets() -> None:
    contact = rec("Contact", CONTACT_KEY, {"LostChurn_ID__c": "cus_1", "LastName": "Doe",
                                           "AccountId": Ref("Account", ACCOUNT_KEY)})
    d = der(contact, account(), inserts=(_task(),))
    order = [p.sobject for p in plan_batch([d], OrgView(DESCRIBES)).to_send()]
    assert order == ["Account", "Contact", "Task"]
    ids = identities([d])
    assert ids["Account"] == {ACCOUNT_KEY}
    assert ids["Contact"] == {CONTACT_KEY, IdKey("003A00000000001AAA")}
