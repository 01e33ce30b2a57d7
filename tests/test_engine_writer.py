"""salesforce/writer.py against the Salesforce sandbox with the real simple-salesforce client
(the org holds the installed LostChurn schema): collections, composite, queries, errors."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import installed_org, org  # noqa: F401

from lc_console.salesforce import errors, tokens, writer
from lc_console.salesforce.writer import SessionExpired, WriteError

PROFILE = "default"


@pytest.fixture
def sf(org: Any) -> Any:  # noqa: F811
    return tokens.manager_for(PROFILE).salesforce()


def _contact(n: int, **extra: Any) -> dict[str, Any]:
    return {"LostChurn_ID__c": f"cus_{n}", "LastName": f"Doe{n}",
            "Email": f"p{n}@acme.example", **extra}


def test_upsert_creates_then_updates_and_reports_each_record_in_order(sf: Any, org: Any) -> None:  # noqa: F811
    first = writer.upsert(sf, "Contact", "LostChurn_ID__c", [_contact(1), _contact(2)])
    assert [(r.ok, r.created) for r in first] == [(True, True), (True, True)]
    again = writer.upsert(sf, "Contact", "LostChurn_ID__c",
                          [_contact(1, LastName="Changed"), {"LostChurn_ID__c": "cus_3"}])
    assert (again[0].ok, again[0].created, again[0].sf_id) == (True, False, first[0].sf_id)
    assert (again[1].ok, again[1].code, again[1].fields) == (
        False, "REQUIRED_FIELD_MISSING", ("LastName",))
    names = {r["LostChurn_ID__c"]: r["LastName"] for r in org.records("Contact")}
    assert names == {"cus_1": "Changed", "cus_2": "Doe2"}


def test_create_mixes_tasks_and_platform_events_and_judges_by_success(sf: Any, org: Any) -> None:  # noqa: F811
    rows = [{"attributes": {"type": "Task"}, "Subject": "Call them", "Priority": "High"},
            {"attributes": {"type": "LostChurn_Recovery_Event__e"}, "Recovery_ID__c": "in_1",
             "Event_Type__c": "started"}]
    results = writer.create(sf, None, rows)
    assert all(r.ok for r in results)
    assert results[1].raw["errors"][0]["statusCode"] == "OPERATION_ENQUEUED"
    assert [e["payload"]["Recovery_ID__c"]
            for e in org.published_events("LostChurn_Recovery_Event__e")] \
        == ["in_1"]


def test_more_than_200_records_is_refused_before_any_call(sf: Any) -> None:
    with pytest.raises(ValueError, match="at most 200"):
        writer.upsert(sf, "Contact", "LostChurn_ID__c", [_contact(n) for n in range(201)])


def test_composite_runs_collections_and_queries_in_one_call(sf: Any, org: Any) -> None:  # noqa: F811
    before = org.usage()
    subs = [
        writer.upsert_request("Account", "LostChurn_Stripe_Customer_ID__c",
                              [{"LostChurn_Stripe_Customer_ID__c": "cus_1", "Name": "acme"}]),
        # A child refers to the parent created just before, by its external id.
        writer.upsert_request("Contact", "LostChurn_ID__c",
                              [_contact(1, Account={"LostChurn_Stripe_Customer_ID__c": "cus_1"})]),
        writer.create_request([{"attributes": {"type": "Task"}, "Subject": "Hello",
                                "What": {"attributes": {"type": "Account"},
                                         "LostChurn_Stripe_Customer_ID__c": "cus_1"}}]),
        writer.query_request("SELECT Id, AccountId FROM Contact WHERE LostChurn_ID__c = 'cus_1'"),
        writer.query_request("SELECT Id FROM Nope__c"),
        writer.describe_request("Task"),
    ]
    answers = writer.composite(sf, subs)
    assert org.usage() == before + 1
    assert [a.status for a in answers] == [200, 200, 200, 200, 400, 200]
    account_id = writer.parse_results(answers[0].body)[0].sf_id
    rows = writer.query_rows(sf, answers[3])
    assert rows[0]["AccountId"] == account_id
    assert org.records("Task")[0]["WhatId"] == account_id
    err = answers[4].error()
    assert err.code == "INVALID_TYPE" and not err.transient
    assert answers[5].body["name"] == "Task"


def test_pack_keeps_order_and_the_limits() -> None:
    q = writer.query_request("SELECT Id FROM Contact")
    d = writer.describe_request("Contact")
    calls = writer.pack([q] * 7 + [d] * 30)
    assert [len(c) for c in calls] == [5, 25, 7]
    assert sum(1 for s in calls[0] if s.heavy) == 5


def test_query_rows_follows_next_records_url(sf: Any, org: Any) -> None:  # noqa: F811
    for start in range(0, 2100, 200):
        writer.upsert(sf, "Contact", "LostChurn_ID__c",
                      [_contact(n) for n in range(start, min(start + 200, 2100))])
    (answer,) = writer.composite(sf, [writer.query_request("SELECT Id FROM Contact")])
    assert answer.body["done"] is False
    assert len(writer.query_rows(sf, answer)) == 2100


def test_errors_are_mapped_to_codes_the_retry_policy_understands(sf: Any, org: Any) -> None:  # noqa: F811
    org.faults.inject("unavailable")
    with pytest.raises(WriteError) as err:
        writer.upsert(sf, "Contact", "LostChurn_ID__c", [_contact(1)])
    assert (err.value.code, err.value.status, err.value.transient) == (
        "SERVER_UNAVAILABLE", 503, True)
    org.faults.inject("drop")
    with pytest.raises(WriteError) as err:
        writer.query_all(sf, "SELECT Id FROM Contact")
    assert err.value.code == "CONNECTION_ERROR" and err.value.transient
    org.faults.inject("lock")
    (locked,) = writer.upsert(sf, "Contact", "LostChurn_ID__c", [_contact(1)])
    assert locked.code == "UNABLE_TO_LOCK_ROW" and errors.is_transient(locked.code)
    org.set_usage(org.org.usage.max_requests)
    with pytest.raises(WriteError) as err:
        writer.upsert(sf, "Contact", "LostChurn_ID__c", [_contact(1)])
    assert (err.value.code, err.value.status) == ("REQUEST_LIMIT_EXCEEDED", 403)
    assert err.value.transient
    org.set_usage(0)
    with pytest.raises(WriteError) as err:
        writer.query_all(sf, "SELECT Nope FROM Contact")
    assert not err.value.transient


def test_usage_and_limits_agree_with_the_org(sf: Any, org: Any) -> None:  # noqa: F811
    org.set_usage(1234)
    used, maximum = writer.limits(sf)
    assert (used, maximum) == (1235, org.org.usage.max_requests)
    assert writer.usage(sf) == (1235, maximum)


def test_an_expired_session_is_renewed_under_the_writer(sf: Any, org: Any) -> None:  # noqa: F811
    org.expire_tokens()
    (ok,) = writer.upsert(sf, "Contact", "LostChurn_ID__c", [_contact(1)])
    assert ok.ok


def test_a_revoked_login_raises_connection_expired(sf: Any, org: Any) -> None:  # noqa: F811
    org.revoke(org.admin.id)
    with pytest.raises(tokens.ConnectionExpired):
        writer.upsert(sf, "Contact", "LostChurn_ID__c", [_contact(1)])


def test_without_the_token_manager_an_expired_session_raises_session_expired(org: Any) -> None:  # noqa: F811
    from simple_salesforce import Salesforce

    from lc_console import net

    sf = Salesforce(instance_url=org.url, session_id=org.login(), version="62.0",
                    session=net.requests_session(org.ca_file))
    org.expire_tokens()
    with pytest.raises(SessionExpired):
        writer.upsert(sf, "Contact", "LostChurn_ID__c", [_contact(1)])


def test_soql_quoting() -> None:
    assert writer.soql_quote("O'Brien\\x\n") == "'O\\'Brien\\\\x\\n'"
    assert writer.in_clause(["a", "b'c"]) == "('a', 'b\\'c')"
