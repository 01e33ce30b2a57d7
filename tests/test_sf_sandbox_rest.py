"""REST fidelity of the Salesforce sandbox, driven by the real simple-salesforce client and raw
httpx, asserted against the reference facts (../shared/reference/salesforce.md §2)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from lc_console.sandbox.salesforce import schema as sch


def sf_client(sb: Any, token: str | None = None, version: str = "62.0") -> Salesforce:
    session = requests.Session()
    session.verify = sb.ca_file
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override session.verify
    return Salesforce(instance_url=sb.url, session_id=token or sb.login(), version=version, session=session)


def http(sb: Any, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or sb.login()}"}
    return httpx.Client(base_url=sb.url, verify=ssl.create_default_context(cafile=sb.ca_file), headers=headers)


def install(sb: Any, unique: bool = True) -> None:
    """What the console's installer leaves behind: custom fields + a granting permission set."""
    org = sb.org
    org.upsert_field("Contact", sch.FieldDef("LC_Id__c", "string", length=80, external_id=True,
                                             unique=unique, custom=True))  # fmt: skip
    org.upsert_field("Contact", sch.FieldDef("LC_Score__c", "double", precision=18, scale=2, custom=True))
    org.upsert_object(sch.SObjectDef("LostChurn_Recovery_Event__e", "Recovery Event", "Recovery Events",
                                     "", custom=True, fields={
                                         "LC_Kind__c": sch.FieldDef("LC_Kind__c", "string", length=40, custom=True)}))  # fmt: skip
    org.upsert_permission_set(sch.PermissionSetDef("LostChurn_Console", "LostChurn Console", field_permissions={
        "Contact.LC_Id__c": sch.FieldPermission(True, True),
        "Contact.LC_Score__c": sch.FieldPermission(True, True)}))  # fmt: skip
    org.assign_permission_set(org.admin_id, "LostChurn_Console")


# -- basics ------------------------------------------------------------------------------------------


def test_versions_list_needs_no_auth_and_is_not_counted(salesforce_sandbox) -> None:
    with httpx.Client(base_url=salesforce_sandbox.url,
                      verify=ssl.create_default_context(cafile=salesforce_sandbox.ca_file)) as c:
        r = c.get("/services/data/")
    assert r.status_code == 200
    items = r.json()
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in items
    assert [float(i["version"]) for i in items] == sorted(float(i["version"]) for i in items)
    assert "Sforce-Limit-Info" not in r.headers
    assert salesforce_sandbox.usage() == 0


def test_expired_or_unknown_token_gets_401_array(salesforce_sandbox) -> None:
    with http(salesforce_sandbox, token="00Dxx!nope") as c:
        r = c.get("/services/data/v62.0/sobjects/")
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    sf = sf_client(salesforce_sandbox)
    salesforce_sandbox.expire_tokens()
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Contact")


def test_crud_with_simple_salesforce(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    created = sf.Contact.create({"LastName": "Ng", "Email": "ng@example.com"})
    assert created["success"] is True and created["errors"] == [] and created["id"].startswith("003")
    rec = sf.Contact.get(created["id"])
    assert rec["attributes"] == {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{created['id']}"}
    assert rec["LastName"] == "Ng" and rec["Name"] == "Ng"
    assert sf.Contact.get(created["id"][:15])["Id"] == created["id"]
    assert sf.Contact.update(created["id"], {"FirstName": "Kim"}) == 204
    assert sf.Contact.get(created["id"])["Name"] == "Kim Ng"
    assert sf.Contact.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Contact.get(created["id"])
    assert exc.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_validation_errors_come_back_as_error_arrays(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"FirstName": "no last name"})
    assert exc.value.content == [{"message": "Required fields are missing: [LastName]",
                                  "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}]  # fmt: skip
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Opportunity.create({"Name": "o", "StageName": "Nope", "CloseDate": "2025-01-31"})
    assert exc.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get("0038d000000AAAAAAA")
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("sobjects/NoSuchThing__c/describe/")


def test_describe_hides_fields_without_fls(salesforce_sandbox) -> None:
    org = salesforce_sandbox.org
    org.upsert_field("Contact", sch.FieldDef("LC_Hidden__c", "string", length=10, custom=True))
    sf = sf_client(salesforce_sandbox)
    names = {f["name"] for f in sf.Contact.describe()["fields"]}
    assert "LastName" in names and "LC_Hidden__c" not in names
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query("SELECT LC_Hidden__c FROM Contact")
    assert "No such column 'LC_Hidden__c' on entity 'Contact'" in exc.value.content[0]["message"]
    g = sf.describe()
    assert g["maxBatchSize"] == 200
    assert {"Contact", "Account", "Opportunity", "Task", "RecordType", "Organization", "User",
            "PermissionSet", "PermissionSetAssignment"} <= {o["name"] for o in g["sobjects"]}  # fmt: skip


# -- upsert --------------------------------------------------------------------------------------------


def test_upsert_201_then_200_with_created_flag(salesforce_sandbox) -> None:
    install(salesforce_sandbox)
    sf = sf_client(salesforce_sandbox)
    first = sf.Contact.upsert("LC_Id__c/C-1", {"LastName": "A"}, raw_response=True)
    assert first.status_code == 201
    assert first.json() == {"id": first.json()["id"], "success": True, "errors": [], "created": True}
    second = sf.Contact.upsert("LC_Id__c/C-1", {"LastName": "B"}, raw_response=True)
    assert second.status_code == 200 and second.json()["created"] is False
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_upsert_on_old_api_version_answers_204(salesforce_sandbox) -> None:
    install(salesforce_sandbox)
    sf = sf_client(salesforce_sandbox, version="45.0")
    assert sf.Contact.upsert("LC_Id__c/C-2", {"LastName": "A"}) == 201
    assert sf.Contact.upsert("LC_Id__c/C-2", {"LastName": "B"}) == 204


def test_upsert_unknown_field_is_404_and_multiple_matches_300(salesforce_sandbox) -> None:
    install(salesforce_sandbox, unique=False)
    sf = sf_client(salesforce_sandbox)
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Contact.upsert("Nope__c/1", {"LastName": "A"})
    assert exc.value.content[0]["errorCode"] == "NOT_FOUND"
    sf.Contact.create({"LastName": "a", "LC_Id__c": "dup"})
    sf.Contact.create({"LastName": "b", "LC_Id__c": "dup"})
    with pytest.raises(SalesforceMoreThanOneRecord) as more:
        sf.Contact.upsert("LC_Id__c/dup", {"LastName": "c"})
    assert len(more.value.content) == 2
    assert all(u.startswith("/services/data/v62.0/sobjects/Contact/003") for u in more.value.content)


def test_external_id_values_are_url_decoded(salesforce_sandbox) -> None:
    from simple_salesforce.format import format_external_id

    install(salesforce_sandbox)
    sf = sf_client(salesforce_sandbox)
    sf.Contact.upsert(format_external_id("LC_Id__c", "cus_A/B 1"), {"LastName": "x"})
    assert salesforce_sandbox.records("Contact")[0]["LC_Id__c"] == "cus_A/B 1"
    assert sf.Contact.get_by_custom_id("LC_Id__c", "cus_A/B 1")["LastName"] == "x"


# -- collections ---------------------------------------------------------------------------------------


def test_collection_upsert_results_in_input_order(salesforce_sandbox) -> None:
    install(salesforce_sandbox)
    sf = sf_client(salesforce_sandbox)
    sf.Contact.upsert("LC_Id__c/K1", {"LastName": "old"})
    records = [{"attributes": {"type": "Contact"}, "LC_Id__c": "K0", "LastName": "n"},
               {"attributes": {"type": "Contact"}, "LC_Id__c": "K1", "LastName": "u"},
               {"attributes": {"type": "Contact"}, "LC_Id__c": "K2"}]  # fmt: skip
    before = salesforce_sandbox.usage()
    out = sf.restful("composite/sobjects/Contact/LC_Id__c", method="PATCH",
                     json={"allOrNone": False, "records": records})  # fmt: skip
    assert salesforce_sandbox.usage() == before + 1  # one API call for the whole collection
    assert [(r["success"], r["created"]) for r in out] == [(True, True), (True, False), (False, False)]
    assert out[2]["errors"] == [{"statusCode": "REQUIRED_FIELD_MISSING",
                                 "message": "Required fields are missing: [LastName]", "fields": ["LastName"]}]  # fmt: skip


def test_collection_all_or_none_rolls_back(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    out = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Contact"}, "LastName": "good"},
        {"attributes": {"type": "Contact"}, "FirstName": "bad"}]})  # fmt: skip
    assert out[0] == {"success": False, "errors": [{
        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
        "fields": []}]}  # fmt: skip
    assert out[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert salesforce_sandbox.records("Contact") == []


def test_collection_update_delete_and_retrieve(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    made = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(3)]})  # fmt: skip
    ids = [m["id"] for m in made]
    upd = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Account"}, "id": ids[0], "Website": "https://a.example"}]})  # fmt: skip
    assert upd == [{"id": ids[0], "success": True, "errors": []}]
    got = sf.restful("composite/sobjects/Account", params={"ids": ",".join(ids), "fields": "Name,Website"})
    assert [g["Name"] for g in got] == ["A0", "A1", "A2"] and got[0]["Website"] == "https://a.example"
    gone = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids[:2])})
    assert [g["success"] for g in gone] == [True, True]
    assert [r["Name"] for r in salesforce_sandbox.records("Account")] == ["A2"]


def test_collection_over_200_records_is_refused(salesforce_sandbox) -> None:
    with http(salesforce_sandbox) as c:
        r = c.post("/services/data/v62.0/composite/sobjects", json={"records": [
            {"attributes": {"type": "Account"}, "Name": "x"}] * 201})  # fmt: skip
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


# -- composite -------------------------------------------------------------------------------------------


def test_composite_references_and_one_api_call(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    before = salesforce_sandbox.usage()
    out = sf.restful("composite", method="POST", headers={"Content-Type": "application/json"}, json={
        "allOrNone": True, "compositeRequest": [
            {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "acc",
             "body": {"Name": "Acme"}},
            {"method": "POST", "url": "/services/data/v62.0/sobjects/Contact", "referenceId": "con",
             "body": {"LastName": "A", "AccountId": "@{acc.id}"}},
            {"method": "GET", "url": "/services/data/v62.0/query?q=SELECT+Id,Account.Name+FROM+Contact",
             "referenceId": "q"},
            {"method": "PATCH", "url": "/services/data/v62.0/sobjects/Contact/@{q.records[0].Id}",
             "referenceId": "upd", "body": {"Title": "CFO"}},
        ]})  # fmt: skip
    assert salesforce_sandbox.usage() == before + 1
    items = out["compositeResponse"]
    assert [i["httpStatusCode"] for i in items] == [201, 201, 200, 204]
    assert items[0]["httpHeaders"]["Location"] == f"/services/data/v62.0/sobjects/Account/{items[0]['body']['id']}"
    assert items[2]["body"]["records"][0]["Account"]["Name"] == "Acme"
    assert salesforce_sandbox.records("Contact")[0]["Title"] == "CFO"


def test_composite_all_or_none_halts_and_rolls_back(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    out = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "a", "body": {"Name": "A"}},
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Contact", "referenceId": "c", "body": {}},
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "b", "body": {"Name": "B"}},
    ]})  # fmt: skip
    items = out["compositeResponse"]
    halted = [{"errorCode": "PROCESSING_HALTED",
               "message": "The transaction was rolled back since another operation in the same transaction failed."}]  # fmt: skip
    assert items[0]["body"] == halted and items[2]["body"] == halted
    assert items[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert salesforce_sandbox.records("Account") == []


def test_composite_caps_subrequests_at_25(salesforce_sandbox) -> None:
    with http(salesforce_sandbox) as c:
        r = c.post("/services/data/v62.0/composite", json={"compositeRequest": [
            {"method": "GET", "url": "/services/data/v62.0/limits", "referenceId": f"r{i}"} for i in range(26)]})  # fmt: skip
    assert r.status_code == 400


def test_composite_graph_is_all_or_none_per_graph(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    out = sf.restful("composite/graph", method="POST", json={"graphs": [
        {"graphId": "ok", "compositeRequest": [
            {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "a", "body": {"Name": "G"}},
            {"method": "POST", "url": "/services/data/v62.0/sobjects/Contact", "referenceId": "c",
             "body": {"LastName": "G", "AccountId": "@{a.id}"}}]},
        {"graphId": "bad", "compositeRequest": [
            {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "a", "body": {"Name": "H"}},
            {"method": "POST", "url": "/services/data/v62.0/sobjects/Contact", "referenceId": "c", "body": {}}]},
    ]})  # fmt: skip
    assert [(g["graphId"], g["isSuccessful"]) for g in out["graphs"]] == [("ok", True), ("bad", False)]
    assert [a["Name"] for a in salesforce_sandbox.records("Account")] == ["G"]


# -- platform events, limits -------------------------------------------------------------------------------


def test_platform_event_publish_answers_operation_enqueued(salesforce_sandbox) -> None:
    install(salesforce_sandbox)
    with http(salesforce_sandbox) as c:
        r = c.post("/services/data/v62.0/sobjects/LostChurn_Recovery_Event__e/", json={"LC_Kind__c": "won"})
        assert r.status_code == 201
        body = r.json()
        assert body["success"] is True and body["id"].startswith("e0")
        assert body["errors"][0]["statusCode"] == "OPERATION_ENQUEUED" and body["errors"][0]["fields"] == []
        many = c.post("/services/data/v62.0/composite/sobjects", json={"records": [
            {"attributes": {"type": "LostChurn_Recovery_Event__e"}, "LC_Kind__c": k} for k in ("a", "b")]})  # fmt: skip
        assert all(i["success"] for i in many.json())
        assert c.get(f"/services/data/v62.0/sobjects/LostChurn_Recovery_Event__e/{body['id']}").status_code == 404
    events = salesforce_sandbox.published_events("LostChurn_Recovery_Event__e")
    assert [e["payload"]["LC_Kind__c"] for e in events] == ["won", "a", "b"]
    assert events[0]["uuid"] == body["errors"][0]["message"]


def test_limits_and_usage_header(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 150000, "Remaining": 150000 - 1}
    sf.query("SELECT Id FROM Contact")
    assert sf.api_usage["api-usage"].used == 2 and sf.api_usage["api-usage"].total == 150000


def test_request_limit_exceeded(salesforce_sandbox) -> None:
    salesforce_sandbox.set_daily_limit(15000)
    salesforce_sandbox.set_usage(15000)
    sf = sf_client(salesforce_sandbox)
    with pytest.raises(SalesforceRefusedRequest) as exc:
        sf.query("SELECT Id FROM Contact")
    assert exc.value.status == 403
    assert exc.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    salesforce_sandbox.advance_clock(24 * 3600 + 60)  # the rolling 24 h window moves on
    sf = sf_client(salesforce_sandbox)  # (the old token expired meanwhile)
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_standard_user_cannot_assign_permission_sets_but_can_read_their_own(salesforce_sandbox) -> None:
    user = salesforce_sandbox.user
    sf = sf_client(salesforce_sandbox, token=salesforce_sandbox.login(user))
    rows = sf.query(f"SELECT Id, PermissionSet.Name FROM PermissionSetAssignment WHERE AssigneeId = '{user.id}' "
                    "AND PermissionSet.PermissionsCustomizeApplication = true")["records"]  # fmt: skip
    assert rows == []
    admin_rows = sf_client(salesforce_sandbox).query(
        f"SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = '{salesforce_sandbox.admin.id}' "
        "AND PermissionSet.PermissionsCustomizeApplication = true")["records"]  # fmt: skip
    assert len(admin_rows) == 1
    ps = sf.query("SELECT Id FROM PermissionSet LIMIT 1")["records"][0]["Id"]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.PermissionSetAssignment.create({"AssigneeId": user.id, "PermissionSetId": ps})
    assert exc.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
