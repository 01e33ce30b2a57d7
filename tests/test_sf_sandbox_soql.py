"""SOQL in the Salesforce sandbox: the subset the console uses, paging at 2,000 rows and
Salesforce-phrased errors, through simple-salesforce."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from lc_console.sandbox.salesforce.values import format_datetime


def sf_client(sb: Any, token: str | None = None) -> Salesforce:
    session = requests.Session()
    session.verify = sb.ca_file
    session.trust_env = False
    return Salesforce(instance_url=sb.url, session_id=token or sb.login(), version="62.0", session=session)


@pytest.fixture
def seeded(salesforce_sandbox):
    org = salesforce_sandbox.org
    acc = org.access(org.admin_id)
    acme = org.insert("Account", {"Name": "Acme", "Website": "acme.example"}, acc).id
    globex = org.insert("Account", {"Name": "Globex"}, acc).id
    rows = [
        ("Ada", "Lovelace", "ada@acme.example", acme, "2024-01-10"),
        ("Alan", "Turing", "alan@acme.example", acme, None),
        ("Grace", "Hopper", "grace@globex.example", globex, "2023-05-01"),
        (None, "Nobody", None, None, None),
    ]
    for first, last, email, account, birth in rows:
        res = org.insert("Contact", {"FirstName": first, "LastName": last, "Email": email,
                                     "AccountId": account, "Birthdate": birth}, acc)  # fmt: skip
        assert res.success, res.errors
    return salesforce_sandbox


def names(result: dict[str, Any]) -> list[str]:
    return [r["LastName"] for r in result["records"]]


def test_select_where_order_limit_offset(seeded) -> None:
    sf = sf_client(seeded)
    r = sf.query("SELECT Id, LastName, Email FROM Contact WHERE Email != null ORDER BY LastName DESC")
    assert names(r) == ["Turing", "Lovelace", "Hopper"]
    assert r["totalSize"] == 3 and r["done"] is True
    assert names(sf.query("SELECT LastName FROM Contact ORDER BY LastName LIMIT 2 OFFSET 1")) == ["Lovelace", "Nobody"]
    assert names(sf.query("SELECT LastName FROM Contact ORDER BY FirstName NULLS LAST, LastName")) == [
        "Lovelace", "Turing", "Hopper", "Nobody"]  # fmt: skip
    assert names(sf.query("SELECT LastName FROM Contact ORDER BY FirstName DESC NULLS FIRST")) == [
        "Nobody", "Hopper", "Turing", "Lovelace"]  # fmt: skip


def test_text_comparisons_are_case_insensitive_and_like_works(seeded) -> None:
    sf = sf_client(seeded)
    assert names(sf.query("SELECT LastName FROM Contact WHERE Email = 'ADA@ACME.example'")) == ["Lovelace"]
    assert names(sf.query("SELECT LastName FROM Contact WHERE Email LIKE '%@acme.%' ORDER BY LastName")) == [
        "Lovelace", "Turing"]  # fmt: skip
    assert names(sf.query("SELECT LastName FROM Contact WHERE LastName LIKE 'h_pper'")) == ["Hopper"]


def test_in_not_in_and_or_not_parentheses(seeded) -> None:
    sf = sf_client(seeded)
    q = ("SELECT LastName FROM Contact WHERE Email IN ('ada@acme.example', 'grace@globex.example', 'x@y.z') "
         "ORDER BY LastName")  # fmt: skip
    assert names(sf.query(q)) == ["Hopper", "Lovelace"]
    q = "SELECT LastName FROM Contact WHERE LastName NOT IN ('Hopper', 'Nobody') ORDER BY LastName"
    assert names(sf.query(q)) == ["Lovelace", "Turing"]
    q = ("SELECT LastName FROM Contact WHERE (FirstName = 'Ada' OR FirstName = 'Grace') AND NOT "
         "(Email LIKE '%globex%') ")  # fmt: skip
    assert names(sf.query(q)) == ["Lovelace"]


def test_relationship_fields_one_level_up(seeded) -> None:
    sf = sf_client(seeded)
    r = sf.query("SELECT LastName, Account.Name, Account.Website FROM Contact WHERE Account.Name = 'Acme' "
                 "ORDER BY LastName")  # fmt: skip
    rec = r["records"][0]
    assert rec["Account"]["Name"] == "Acme" and rec["Account"]["Website"] == "acme.example"
    assert rec["Account"]["attributes"]["type"] == "Account"
    assert names(r) == ["Lovelace", "Turing"]
    nobody = sf.query("SELECT Account.Name FROM Contact WHERE LastName = 'Nobody'")["records"][0]
    assert nobody["Account"] is None
    owner = sf.query("SELECT Owner.Username FROM Contact LIMIT 1")["records"][0]
    assert owner["Owner"]["Username"] == seeded.admin.username


def test_count_and_null_and_booleans_and_dates(seeded) -> None:
    sf = sf_client(seeded)
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 4
    assert sf.query("SELECT COUNT() FROM Contact WHERE AccountId = null")["totalSize"] == 1
    assert sf.query("SELECT COUNT(Email) FROM Contact")["records"][0]["expr0"] == 3
    assert sf.query("SELECT COUNT() FROM Contact WHERE HasOptedOutOfEmail = false")["totalSize"] == 4
    assert names(sf.query("SELECT LastName FROM Contact WHERE Birthdate > 2023-12-31")) == ["Lovelace"]
    assert sf.query("SELECT COUNT() FROM Contact WHERE CreatedDate = TODAY")["totalSize"] == 4
    assert sf.query("SELECT COUNT() FROM Contact WHERE CreatedDate = LAST_N_DAYS:7")["totalSize"] == 4
    now = format_datetime(seeded.org.clock.now_ms() + 60_000).replace("+0000", "Z")
    assert sf.query(f"SELECT COUNT() FROM Contact WHERE CreatedDate < {now}")["totalSize"] == 4
    assert sf.query(f"SELECT COUNT() FROM Contact WHERE CreatedDate > {now}")["totalSize"] == 0


def test_organization_query_like_the_cli(seeded) -> None:
    sf = sf_client(seeded)
    org = sf.query("SELECT Id, Name, IsSandbox, OrganizationType, InstanceName, NamespacePrefix, "
                   "TrialExpirationDate FROM Organization")["records"][0]  # fmt: skip
    assert org["Id"].startswith("00D") and org["IsSandbox"] is False
    assert org["OrganizationType"] == "Enterprise Edition"
    assert sf.is_sandbox() is False


def test_query_all_includes_deleted_records(seeded) -> None:
    sf = sf_client(seeded)
    rid = sf.query("SELECT Id FROM Contact WHERE LastName = 'Nobody'")["records"][0]["Id"]
    sf.Contact.delete(rid)
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 3
    deleted = sf.query_all("SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true", include_deleted=True)
    assert [r["Id"] for r in deleted["records"]] == [rid]


def test_paging_at_2000_rows(salesforce_sandbox) -> None:
    org = salesforce_sandbox.org
    acc = org.access(org.admin_id)
    org.save_many("insert", "Account", [{"Name": f"A{i:05d}"} for i in range(4500)], acc)
    sf = sf_client(salesforce_sandbox)
    first = sf.query("SELECT Id, Name FROM Account ORDER BY Name")
    assert first["totalSize"] == 4500 and first["done"] is False and len(first["records"]) == 2000
    nxt = first["nextRecordsUrl"]
    assert nxt.startswith("/services/data/v62.0/query/01g") and nxt.endswith("-2000")
    second = sf.query_more(nxt, identifier_is_url=True)
    assert second["records"][0]["Name"] == "A02000" and second["nextRecordsUrl"].endswith("-4000")
    all_names = [r["Name"] for r in sf.query_all_iter("SELECT Name FROM Account ORDER BY Name")]
    assert all_names == [f"A{i:05d}" for i in range(4500)]
    small = sf.query("SELECT Name FROM Account", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(small["records"]) == 500


def test_in_with_200_values_uses_the_email_index(salesforce_sandbox) -> None:
    org = salesforce_sandbox.org
    acc = org.access(org.admin_id)
    org.save_many("insert", "Contact", [{"LastName": f"L{i}", "Email": f"u{i}@example.com"}
                                        for i in range(3000)], acc)  # fmt: skip
    emails = ", ".join(f"'U{i}@example.com'" for i in range(0, 3000, 15))
    r = sf_client(salesforce_sandbox).query(f"SELECT Id, Email FROM Contact WHERE Email IN ({emails})")
    assert r["totalSize"] == 200
    assert {x["Email"] for x in r["records"]} == {f"u{i}@example.com" for i in range(0, 3000, 15)}


@pytest.mark.parametrize(
    ("soql", "code", "text"),
    [
        ("SELECT Id FRM Contact", "MALFORMED_QUERY", "ERROR at Row:1:Column:11\nunexpected token: FRM"),
        ("SELECT Id, Foo__c FROM Contact", "INVALID_FIELD",
         "\nSELECT Id, Foo__c FROM Contact\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo__c' on entity 'Contact'."),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE", "sObject type 'Nope__c' is not supported."),
        ("SELECT Nope.Name FROM Contact", "INVALID_FIELD", "Didn't understand relationship 'Nope' in field path."),
        ("SELECT Id FROM Contact WHERE LastName = 'a' AND FirstName = 'b' OR Email = null",
         "MALFORMED_QUERY", "unexpected token: OR"),
        ("SELECT Id FROM Contact WHERE Birthdate = '2020-01-01'", "INVALID_FIELD",
         "value of filter criterion for field 'Birthdate' must be of type date and should not be enclosed in quotes"),
        ("SELECT Id FROM Contact LIMIT", "MALFORMED_QUERY", "unexpected token: <EOF>"),
    ],
)  # fmt: skip
def test_errors_are_phrased_like_salesforce(salesforce_sandbox, soql: str, code: str, text: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf_client(salesforce_sandbox).query(soql)
    assert exc.value.content[0]["errorCode"] == code
    assert text in exc.value.content[0]["message"]
