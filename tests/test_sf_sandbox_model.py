"""The Salesforce sandbox's org model: ids, schema, validation codes, FLS, metadata changes,
transactions and persistence (no HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lc_console.sandbox.salesforce import ids
from lc_console.sandbox.salesforce import schema as sch
from lc_console.sandbox.salesforce.errors import ApiError
from lc_console.sandbox.salesforce.org import Org


def ext_field(name: str = "LC_Id__c", **kw: object) -> sch.FieldDef:
    opts = {"length": 80, "external_id": True, "unique": True, "custom": True, **kw}
    return sch.FieldDef(name, "string", **opts)  # type: ignore[arg-type]


def grant(org: Org, *fields: str, name: str = "LC_Test") -> None:
    org.upsert_permission_set(sch.PermissionSetDef(
        name, name, field_permissions={f: sch.FieldPermission(True, True) for f in fields}))  # fmt: skip
    org.assign_permission_set(org.admin_id, name)


@pytest.fixture
def org() -> Org:
    return Org()


@pytest.fixture
def admin(org: Org):
    return org.access(org.admin_id)


# -- ids ----------------------------------------------------------------------------------------------


def test_known_15_to_18_conversion() -> None:
    assert ids.to18("001A0000006Vm9r") == "001A0000006Vm9rIAC"


def test_18_char_ids_are_case_insensitive_and_15_char_equivalent() -> None:
    rid = ids.new_id("003")
    assert len(rid) == 18 and rid.startswith("003")
    assert ids.normalize(rid[:15]) == rid
    assert ids.normalize(rid.upper()) == rid
    assert ids.normalize(rid.lower()) == rid


@pytest.mark.parametrize("bad", ["", "003", "003xx00000000001AAAA", "003-x0000000001", 42])
def test_malformed_ids_are_rejected(bad: object) -> None:
    with pytest.raises(ids.MalformedIdError):
        ids.normalize(bad)  # type: ignore[arg-type]


def test_new_ids_never_repeat() -> None:
    assert len({ids.new_id("001") for _ in range(5000)}) == 5000


# -- schema -------------------------------------------------------------------------------------------


def test_standard_objects_have_the_real_prefixes_and_required_fields(org: Org) -> None:
    s = org.schema
    assert {n: s.get(n).key_prefix for n in ("Account", "Contact", "Opportunity", "Task")} == {  # type: ignore[union-attr]
        "Account": "001", "Contact": "003", "Opportunity": "006", "Task": "00T"}  # fmt: skip
    assert s.get("contact").field("lastname").required  # type: ignore[union-attr]
    opp = s.get("Opportunity")
    assert opp is not None
    assert {f.name for f in opp.fields.values() if f.required} == {"Name", "StageName", "CloseDate"}
    stage = opp.field("StageName")
    assert stage is not None and stage.restricted_picklist
    assert stage.active_picklist_values[:2] == ["Prospecting", "Qualification"]
    assert "Closed Won" in stage.active_picklist_values
    for name in ("Account", "Contact", "Opportunity", "Task"):
        assert s.get(name).field("OwnerId") is not None  # type: ignore[union-attr]


def test_describe_matches_salesforce_shape(org: Org) -> None:
    d = sch.render_describe(org.schema, org.schema.get("Contact"), "62.0")  # type: ignore[arg-type]
    assert d["name"] == "Contact" and d["keyPrefix"] == "003"
    assert d["urls"]["describe"] == "/services/data/v62.0/sobjects/Contact/describe"
    last = next(f for f in d["fields"] if f["name"] == "LastName")
    assert (last["type"], last["length"], last["nillable"], last["soapType"]) == ("string", 80, False, "xsd:string")
    acc = next(f for f in d["fields"] if f["name"] == "AccountId")
    assert acc["referenceTo"] == ["Account"] and acc["relationshipName"] == "Account"


def test_opportunity_record_type_needs_a_business_process(org: Org) -> None:
    with pytest.raises(sch.SchemaError, match="Sales Process"):
        org.upsert_record_type("Opportunity", sch.RecordTypeDef("LC_WinBack", "Win-Back"))
    with pytest.raises(sch.SchemaError, match="not found"):
        org.upsert_business_process("Opportunity", sch.BusinessProcessDef("P", ["Nope"]))
    org.upsert_business_process("Opportunity", sch.BusinessProcessDef("LC_P", ["Prospecting", "Closed Won"]))
    org.upsert_record_type("Opportunity", sch.RecordTypeDef("LC_WinBack", "Win-Back", business_process="LC_P"))
    rts = org.records("RecordType")
    assert [(r["DeveloperName"], r["SobjectType"]) for r in rts] == [("LC_WinBack", "Opportunity")]
    assert rts[0]["BusinessProcessId"].startswith("019")


# -- validation codes --------------------------------------------------------------------------------


def test_required_field_missing(org: Org, admin) -> None:
    res = org.insert("Contact", {"FirstName": "Ada"}, admin)
    assert not res.success
    assert res.errors[0].item() == {"statusCode": "REQUIRED_FIELD_MISSING",
                                    "message": "Required fields are missing: [LastName]",
                                    "fields": ["LastName"]}  # fmt: skip


def test_string_too_long_and_bad_email(org: Org, admin) -> None:
    res = org.insert("Contact", {"LastName": "x" * 81}, admin)
    assert res.errors[0].code == "STRING_TOO_LONG"
    assert "max length=80" in res.errors[0].message
    res = org.insert("Contact", {"LastName": "x", "Email": "not-an-email"}, admin)
    assert res.errors[0].code == "INVALID_EMAIL_ADDRESS"


def test_restricted_picklist(org: Org, admin) -> None:
    res = org.insert("Opportunity", {"Name": "o", "StageName": "Won-ish", "CloseDate": "2025-01-31"}, admin)
    assert res.errors[0].code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert res.errors[0].message == "Stage: bad value for restricted picklist field: Won-ish"


def test_lookup_checks(org: Org, admin) -> None:
    contact = org.insert("Contact", {"LastName": "C"}, admin).id
    assert org.insert("Contact", {"LastName": "x", "AccountId": "zzz"}, admin).errors[0].code == "MALFORMED_ID"
    wrong_type = org.insert("Contact", {"LastName": "x", "AccountId": contact}, admin)
    assert wrong_type.errors[0].code == "FIELD_INTEGRITY_EXCEPTION"
    missing = org.insert("Contact", {"LastName": "x", "AccountId": "0018d000000ZZZZ"}, admin)
    assert missing.errors[0].code == "INVALID_CROSS_REFERENCE_KEY"
    acct = org.insert("Account", {"Name": "Acme"}, admin).id
    assert acct is not None
    org.delete(acct, admin)
    assert org.insert("Contact", {"LastName": "x", "AccountId": acct}, admin).errors[0].code == "ENTITY_IS_DELETED"


def test_unknown_field_and_read_only_field(org: Org, admin) -> None:
    assert org.insert("Contact", {"LastName": "x", "Nope__c": 1}, admin).errors[0].code == "INVALID_FIELD"
    err = org.insert("Contact", {"LastName": "x", "CreatedDate": "2020-01-01T00:00:00Z"}, admin).errors[0]
    assert err.code == "INVALID_FIELD_FOR_INSERT_UPDATE" and err.fields == ["CreatedDate"]


def test_duplicate_value_on_unique_field(org: Org, admin) -> None:
    org.upsert_field("Contact", ext_field())
    grant(org, "Contact.LC_Id__c")
    admin = org.access(org.admin_id)
    first = org.insert("Contact", {"LastName": "a", "LC_Id__c": "K-1"}, admin)
    dup = org.insert("Contact", {"LastName": "b", "LC_Id__c": "k-1"}, admin)  # case-insensitive
    assert dup.errors[0].code == "DUPLICATE_VALUE"
    assert dup.errors[0].message == f"duplicate value found: LC_Id__c duplicates value on record with id: {first.id}"


def test_update_and_delete_of_missing_or_deleted_records(org: Org, admin) -> None:
    rid = org.insert("Contact", {"LastName": "a"}, admin).id
    assert rid is not None
    assert org.delete(rid, admin).success
    assert org.update("Contact", rid, {"LastName": "b"}, admin).errors[0].code == "ENTITY_IS_DELETED"
    assert org.delete(rid, admin).errors[0].code == "ENTITY_IS_DELETED"
    with pytest.raises(ApiError) as exc:
        org.retrieve("Contact", rid, admin)
    assert (exc.value.code, exc.value.status) == ("ENTITY_IS_DELETED", 404)
    assert org.update("Contact", "foo", {}, admin).errors[0].code == "MALFORMED_ID"


def test_system_fields_and_derived_values(org: Org, admin) -> None:
    acct = org.insert("Account", {"Name": "Acme"}, admin).id
    opp = org.insert("Opportunity", {"Name": "o", "StageName": "Closed Won", "CloseDate": "2025-01-31",
                                     "AccountId": acct}, admin)  # fmt: skip
    rec = org.retrieve("Opportunity", opp.id, admin)  # type: ignore[arg-type]
    assert rec["IsWon"] is True and rec["IsClosed"] is True and rec["Probability"] == 100
    assert rec["OwnerId"] == org.admin_id and rec["CreatedById"] == org.admin_id
    assert rec["CreatedDate"].endswith("+0000") and rec["CreatedDate"] == rec["SystemModstamp"]


def test_deleting_an_account_cascades_to_contacts(org: Org, admin) -> None:
    acct = org.insert("Account", {"Name": "Acme"}, admin).id
    org.insert("Contact", {"LastName": "a", "AccountId": acct}, admin)
    org.delete(acct, admin)  # type: ignore[arg-type]
    assert org.count("Contact") == 0 and org.count("Contact", include_deleted=True) == 1


# -- FLS and metadata changes -----------------------------------------------------------------------------


def test_deployed_field_is_invisible_until_a_permission_set_grants_it(org: Org, admin) -> None:
    org.upsert_field("Contact", ext_field())
    res = org.insert("Contact", {"LastName": "a", "LC_Id__c": "1"}, admin)
    assert res.errors[0].code == "INVALID_FIELD"
    with pytest.raises(ApiError) as exc:
        org.upsert("Contact", "LC_Id__c", "1", {"LastName": "a"}, admin)
    assert exc.value.status == 404
    grant(org, "Contact.LC_Id__c")
    admin = org.access(org.admin_id)
    assert org.upsert("Contact", "LC_Id__c", "1", {"LastName": "a"}, admin).created is True
    # the standard user has no such grant
    assert org.insert("Contact", {"LastName": "b", "LC_Id__c": "2"},
                      org.access(org.standard_user().id)).errors[0].code == "INVALID_FIELD"  # fmt: skip


def test_custom_object_needs_object_permission_for_a_standard_user(org: Org) -> None:
    org.upsert_object(sch.SObjectDef("LostChurn_Recovery__c", "Recovery", "Recoveries", "", custom=True))
    user = org.access(org.standard_user().id)
    with pytest.raises(ApiError) as exc:
        org.insert("LostChurn_Recovery__c", {"Name": "r"}, user)
    assert exc.value.code == "NOT_FOUND"
    assert org.insert("LostChurn_Recovery__c", {"Name": "r"}, org.access(org.admin_id)).success


def test_customize_application_permission(org: Org) -> None:
    assert org.has_permission(org.admin_id, "CustomizeApplication")
    assert not org.has_permission(org.standard_user().id, "CustomizeApplication")


def test_removing_a_field_clears_its_values_and_removing_an_object_deletes_records(org: Org) -> None:
    org.upsert_field("Contact", ext_field())
    grant(org, "Contact.LC_Id__c")
    admin = org.access(org.admin_id)
    org.insert("Contact", {"LastName": "a", "LC_Id__c": "X1"}, admin)
    org.remove_field("Contact", "LC_Id__c")
    org.upsert_field("Contact", ext_field())
    grant(org, "Contact.LC_Id__c", name="LC_Again")
    admin = org.access(org.admin_id)
    assert [r["LC_Id__c"] for r in org.records("Contact")] == [None]
    org.upsert_object(sch.SObjectDef("Thing__c", "Thing", "Things", "", custom=True))
    org.insert("Thing__c", {"Name": "t"}, admin)
    assert org.count("Thing__c") == 1
    org.remove_object("Thing__c")
    assert org.schema.get("Thing__c") is None
    with pytest.raises(KeyError):
        org.count("Thing__c")


def test_platform_event_publish_is_recorded_not_stored(org: Org, admin) -> None:
    org.upsert_object(sch.SObjectDef("LC_Event__e", "Event", "Events", "", custom=True,
                                     fields={"Kind__c": sch.FieldDef("Kind__c", "string", length=40, custom=True)}))  # fmt: skip
    res = org.insert("LC_Event__e", {"Kind__c": "recovered"}, admin)
    assert res.success and res.id.startswith("e0") and res.event_uuid  # type: ignore[union-attr]
    assert [e["payload"]["Kind__c"] for e in org.published_events()] == ["recovered"]


# -- transactions and persistence -------------------------------------------------------------------


def test_all_or_none_rolls_everything_back(org: Org, admin) -> None:
    results = org.save_many("insert", "Contact", [{"LastName": "ok"}, {"FirstName": "bad"}], admin,
                            all_or_none=True)  # fmt: skip
    assert [r.errors[0].code for r in results] == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "REQUIRED_FIELD_MISSING"]
    assert org.count("Contact") == 0


def test_state_file_round_trip(org: Org, admin, tmp_path: Path) -> None:
    org.upsert_field("Contact", ext_field())
    grant(org, "Contact.LC_Id__c")
    admin = org.access(org.admin_id)
    org.upsert("Contact", "LC_Id__c", "P-1", {"LastName": "Persisted", "Email": "p@x.io"}, admin)
    org.usage.set_used(42)
    path = tmp_path / "org.json"
    org.save(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = Org.load(path)
    acc = again.access(again.admin_id)
    assert again.usage.used() == 42
    assert again.find_by_external_id("Contact", "LC_Id__c", "p-1") == org.find_by_external_id("Contact", "LC_Id__c", "P-1")
    res = again.upsert("Contact", "LC_Id__c", "P-1", {"LastName": "Again"}, acc)
    assert res.created is False
    assert again.insert("Contact", {"LastName": "n"}, acc).id not in {r["Id"] for r in org.records("Contact")}
