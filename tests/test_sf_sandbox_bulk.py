"""Bulk API 2.0 of the Salesforce sandbox: CSV rules, then the real simple-salesforce client and
raw httpx against a running sandbox."""

from __future__ import annotations

import csv
import io
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceOperationError

from lc_console.sandbox.salesforce import bulk_api, bulk_csv
from lc_console.sandbox.salesforce.bulk_csv import CsvJobError
from lc_console.sandbox.salesforce.sandbox import SalesforceSandbox
from lc_console.sandbox.salesforce.schema import FieldDef, FieldPermission, PermissionSetDef

# --- CSV rules (no server) ------------------------------------------------------------------


def test_parse_upload_keeps_header_as_uploaded_and_reads_quoted_values():
    parsed = bulk_csv.parse_upload(b'Email,LastName\n"a@x.io","O\'Neil, ""Jr"""\nb@x.io,\n')
    assert parsed.header == ["Email", "LastName"]
    assert parsed.rows == [["a@x.io", 'O\'Neil, "Jr"'], ["b@x.io", ""]]


def test_empty_cell_is_unchanged_and_na_is_null():
    values = bulk_csv.row_values(["a@x.io", "", "#N/A"], ["Email", "FirstName", "Phone"])
    assert values == {"Email": "a@x.io", "Phone": None}


@pytest.mark.parametrize("delimiter,char", [("TAB", "\t"), ("PIPE", "|"), ("SEMICOLON", ";"),
                                            ("CARET", "^"), ("BACKQUOTE", "`")])
def test_column_delimiters(delimiter, char):
    parsed = bulk_csv.parse_upload(f"A{char}B\n1{char}2\n".encode(), column_delimiter=delimiter)
    assert parsed.rows == [["1", "2"]]


def test_line_ending_mismatch_fails_the_job():
    with pytest.raises(CsvJobError, match="LineEnding is invalid on user data. Current LineEnding setting is LF"):
        bulk_csv.parse_upload(b"A,B\r\n1,2\r\n", line_ending="LF")
    with pytest.raises(CsvJobError, match="Current LineEnding setting is CRLF"):
        bulk_csv.parse_upload(b"A,B\n1,2\n", line_ending="CRLF")
    # a newline inside a quoted value is data, not a line ending
    parsed = bulk_csv.parse_upload(b'A,B\r\n"x\ny",2\r\n', line_ending="CRLF")
    assert parsed.rows == [["x\ny", "2"]]


def test_header_problems_fail_the_job():
    with pytest.raises(CsvJobError, match="Duplicate field name"):
        bulk_csv.parse_upload(b"Email,email\n1,2\n")
    with pytest.raises(CsvJobError):
        bulk_csv.parse_upload(b"")
    with pytest.raises(CsvJobError, match="invalid UTF-8"):
        bulk_csv.parse_upload(b"A\n\xff\n")


def test_bom_is_ignored():
    assert bulk_csv.parse_upload("\ufeffEmail\nx\n".encode()).header == ["Email"]


def test_results_quote_every_value_and_echo_original_columns():
    out = bulk_csv.write_results(["sf__Id", "sf__Created"], ["Email", "LastName"],
                                 [["003", "true", "a@x.io", "Doe"]])
    assert out.decode() == '"sf__Id","sf__Created","Email","LastName"\n"003","true","a@x.io","Doe"\n'
    rows = list(csv.reader(io.StringIO(out.decode())))
    assert rows[1] == ["003", "true", "a@x.io", "Doe"]


def test_error_text_format():
    assert bulk_csv.error_text("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]",
                               ["LastName"]) == \
        "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"


def test_field_too_long_is_a_row_problem():
    problem = bulk_csv.row_problem(["x" * 32_001], ["Description"])
    assert problem is not None and problem.startswith("STRING_TOO_LONG:")
    assert bulk_csv.base64_size(3) == 4 and bulk_csv.base64_size(4) == 8


# --- against a running sandbox ---------------------------------------------------------------

V = "62.0"


@pytest.fixture(scope="session")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sf-sandbox-ca")


@pytest.fixture
def sandbox(ca_dir: Path) -> Iterator[SalesforceSandbox]:
    """An org with Contact.LostChurn_ID__c (text external id) and Contact.LostChurn_MRR__c,
    visible to the admin through an assigned permission set."""
    sb = SalesforceSandbox(cert_dir=ca_dir).start()
    org = sb.org
    org.upsert_field("Contact", FieldDef("LostChurn_ID__c", "string", label="LostChurn ID",
                                         length=64, external_id=True, unique=True, custom=True))
    org.upsert_field("Contact", FieldDef("LostChurn_MRR__c", "currency", label="MRR",
                                         precision=16, scale=2, custom=True))
    org.upsert_permission_set(PermissionSetDef("LC", "LC", field_permissions={
        "Contact.LostChurn_ID__c": FieldPermission(True, True),
        "Contact.LostChurn_MRR__c": FieldPermission(True, True)}))
    org.assign_permission_set(org.admin_id, "LC")
    yield sb
    sb.stop()


def client(sb: SalesforceSandbox) -> Salesforce:
    session = requests.Session()
    session.verify = sb.ca_file
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
    return Salesforce(instance_url=sb.url, session_id=sb.login(sb.admin), session=session,
                      version=V)


def http(sb: SalesforceSandbox) -> httpx.Client:
    return httpx.Client(base_url=f"{sb.url}/services/data/v{V}",
                        verify=ssl.create_default_context(cafile=sb.ca_file),
                        headers={"Authorization": f"Bearer {sb.login(sb.admin)}"})


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def contacts(sb: SalesforceSandbox) -> dict[str, dict]:
    return {r["LostChurn_ID__c"]: r for r in sb.records("Contact") if r.get("LostChurn_ID__c")}


def wait_done(api: httpx.Client, job_id: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = api.get(f"/jobs/ingest/{job_id}").json()
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def test_upsert_creates_then_updates_by_external_id(sandbox: SalesforceSandbox, tmp_path: Path):
    sf = client(sandbox)
    path = write(tmp_path, "LostChurn_ID__c,LastName,Email,LostChurn_MRR__c\n"
                           "C-1,Ng,ng@x.io,10.5\nC-2,Lee,lee@x.io,20\n")
    [result] = sf.bulk2.Contact.upsert(path, external_id_field="LostChurn_ID__c", wait=0.05)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (2, 0)
    created = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_successful_records(result["job_id"]))))
    assert [r["sf__Created"] for r in created] == ["true", "true"]
    assert all(r["sf__Id"].startswith("003") and len(r["sf__Id"]) == 18 for r in created)
    assert contacts(sandbox)["C-1"]["LostChurn_MRR__c"] == 10.5

    # empty cell = unchanged, #N/A = null
    path = write(tmp_path, "LostChurn_ID__c,LastName,Email,LostChurn_MRR__c\nC-1,Ng-Smith,,#N/A\n")
    [result] = sf.bulk2.Contact.upsert(path, external_id_field="LostChurn_ID__c", wait=0.05)
    updated = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_successful_records(result["job_id"]))))
    assert [(r["sf__Id"], r["sf__Created"]) for r in updated] == [(created[0]["sf__Id"], "false")]
    row = contacts(sandbox)["C-1"]
    assert (row["LastName"], row["Email"], row["LostChurn_MRR__c"]) == ("Ng-Smith", "ng@x.io", None)
    assert len(contacts(sandbox)) == 2


def test_insert_failures_have_sf_error_and_original_columns(sandbox: SalesforceSandbox, tmp_path: Path):
    sf = client(sandbox)
    path = write(tmp_path, "LastName,Email,Birthdate\nOk,ok@x.io,2020-01-31\n"
                           ",missing@x.io,\nBad,bad@x.io,6/15/19\nMail,not-an-email,\n")
    [result] = sf.bulk2.Contact.insert(path, wait=0.05)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (4, 3)
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(result["job_id"]))))
    assert [r["sf__Error"] for r in failed] == [
        "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
        "INVALID_FIELD:Failed to deserialize field at col 3. Due to, '6/15/19' is not a valid "
        "value for the type xsd:date:Birthdate --",
        "INVALID_EMAIL_ADDRESS:Email: invalid email address: not-an-email:Email --",
    ]
    assert [r["sf__Id"] for r in failed] == ["", "", ""]
    assert failed[0]["Email"] == "missing@x.io"
    assert sf.bulk2.Contact.get_unprocessed_records(result["job_id"]).strip() == \
        '"LastName","Email","Birthdate"'


def test_delete_and_update_by_id(sandbox: SalesforceSandbox, tmp_path: Path):
    sf = client(sandbox)
    ids_ = [sandbox.org.insert("Contact", {"LastName": f"N{i}"}, sandbox.org.system).id for i in range(3)]
    path = write(tmp_path, "Id,LastName\n" + "".join(f"{i},Renamed\n" for i in ids_[:2]))
    [result] = sf.bulk2.Contact.update(path, wait=0.05)
    assert result["numberRecordsFailed"] == 0
    path = write(tmp_path, "Id\n" + "".join(f"{i}\n" for i in ids_) + "003000000000000AAA\n")
    [result] = sf.bulk2.Contact.delete(path, wait=0.05)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (4, 1)
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(result["job_id"]))))
    assert failed[0]["sf__Id"] == "003000000000000AAA"
    assert failed[0]["sf__Error"].startswith("INVALID_CROSS_REFERENCE_KEY:")
    assert sandbox.org.count("Contact") == 0


def test_unknown_column_fails_the_job(sandbox: SalesforceSandbox, tmp_path: Path):
    sf = client(sandbox)
    path = write(tmp_path, "LastName,Nope__c\nA,1\n")
    with pytest.raises(SalesforceOperationError, match="InvalidBatch : Field name not found : Nope__c"):
        sf.bulk2.Contact.insert(path, wait=0.05)
    assert sandbox.org.count("Contact") == 0


def test_raw_job_lifecycle(sandbox: SalesforceSandbox):
    with http(sandbox) as api:
        used = sandbox.usage()
        created = api.post("/jobs/ingest", json={"object": "Contact", "operation": "upsert",
                                                 "externalIdFieldName": "LostChurn_ID__c",
                                                 "lineEnding": "CRLF",
                                                 "columnDelimiter": "SEMICOLON"})
        assert created.status_code == 200
        assert created.headers["Sforce-Limit-Info"] == f"api-usage={used + 1}/150000"
        job = created.json()
        assert job["state"] == "Open" and job["apiVersion"] == 62.0
        assert job["contentUrl"] == f"services/data/v{V}/jobs/ingest/{job['id']}/batches"
        assert job["id"].startswith("750")
        assert (job["lineEnding"], job["columnDelimiter"], job["concurrencyMode"]) == \
            ("CRLF", "SEMICOLON", "Parallel")

        put = api.put(f"/{job['contentUrl'].split('/', 3)[3]}",
                      content=b"LostChurn_ID__c;LastName\r\nC-9;Nine\r\n",
                      headers={"Content-Type": "text/csv"})
        assert (put.status_code, put.content) == (201, b"")
        again = api.put(f"/jobs/ingest/{job['id']}/batches", content=b"x\r\n",
                        headers={"Content-Type": "text/csv"})
        assert again.status_code == 400 and again.json()[0]["errorCode"] == "INVALIDJOBSTATE"

        closed = api.patch(f"/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
        assert closed.status_code == 200 and closed.json()["state"] == "UploadComplete"
        info = wait_done(api, job["id"])
        assert info["state"] == "JobComplete"
        assert (info["jobType"], info["numberRecordsProcessed"], info["numberRecordsFailed"],
                info["retries"]) == ("V2Ingest", 1, 0, 0)
        assert isinstance(info["totalProcessingTime"], int)

        results = api.get(f"/jobs/ingest/{job['id']}/successfulResults/")
        assert results.status_code == 200 and results.headers["Content-Type"].startswith("text/csv")
        assert results.text.startswith('"sf__Id";"sf__Created";"LostChurn_ID__c";"LastName"\r\n')
        for path in ("unprocessedrecords", "unprocessedRecords", "UNPROCESSEDRECORDS/"):
            assert api.get(f"/jobs/ingest/{job['id']}/{path}").status_code == 200

        listed = api.get("/jobs/ingest").json()
        assert listed["done"] is True and [r["id"] for r in listed["records"]] == [job["id"]]

        assert api.patch(f"/jobs/ingest/{job['id']}", json={"state": "Aborted"}).json() == \
            [{"errorCode": "INVALIDJOBSTATE", "message": "Aborting already Completed Job not allowed"}]
        deleted = api.delete(f"/jobs/ingest/{job['id']}")
        assert (deleted.status_code, deleted.content) == (204, b"")
        assert api.get(f"/jobs/ingest/{job['id']}").status_code == 404
        # every request counted
        assert sandbox.usage() >= used + 10


def test_aborted_job_leaves_rows_unprocessed(sandbox: SalesforceSandbox):
    with http(sandbox) as api:
        job = api.post("/jobs/ingest", json={"object": "Contact", "operation": "insert"}).json()
        api.put(f"/jobs/ingest/{job['id']}/batches", content=b"LastName\nA\nB\n",
                headers={"Content-Type": "text/csv"})
        aborted = api.patch(f"/jobs/ingest/{job['id']}", json={"state": "Aborted"})
        assert aborted.json()["state"] == "Aborted"
        rows = list(csv.reader(io.StringIO(api.get(f"/jobs/ingest/{job['id']}/unprocessedrecords").text)))
        assert rows == [["LastName"], ["A"], ["B"]]
        assert sandbox.org.count("Contact") == 0


def test_job_creation_errors(sandbox: SalesforceSandbox):
    with http(sandbox) as api:
        no_ext = api.post("/jobs/ingest", json={"object": "Contact", "operation": "upsert"})
        assert no_ext.status_code == 400
        assert no_ext.json()[0]["message"] == ("InvalidJob : External ID was blank for Contact. "
                                               "An External ID must be specified for upsert.")
        bad_ext = api.post("/jobs/ingest", json={"object": "Contact", "operation": "upsert",
                                                 "externalIdFieldName": "LastName"})
        assert "does not match an External ID" in bad_ext.json()[0]["message"]
        unknown = api.post("/jobs/ingest", json={"object": "Nope__c", "operation": "insert"})
        assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALIDENTITY"
        bad_enum = api.post("/jobs/ingest", json={"object": "Contact", "operation": "insert",
                                                  "lineEnding": "CR"})
        assert bad_enum.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
        assert api.get("/jobs/ingest/7508d0000000999AAA").status_code == 404
        assert api.get("/jobs/ingest", headers={"Authorization": "Bearer nope"}).json() == \
            [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_upload_limits_and_content_type(sandbox: SalesforceSandbox):
    bulk_api.service(sandbox.app).max_upload_base64_bytes = 40
    with http(sandbox) as api:
        job = api.post("/jobs/ingest", json={"object": "Contact", "operation": "insert"}).json()
        url = f"/jobs/ingest/{job['id']}/batches"
        too_big = api.put(url, content=b"LastName\n" + b"x" * 40 + b"\n",
                          headers={"Content-Type": "text/csv"})
        assert too_big.status_code == 400 and "Exceeded max size limit" in too_big.json()[0]["message"]
        wrong_type = api.put(url, content=b"LastName\nA\n", headers={"Content-Type": "application/json"})
        assert wrong_type.status_code == 400
        assert api.put(url, content=b"LastName\nA\n", headers={"Content-Type": "text/csv"}).status_code == 201


def test_job_with_the_wrong_line_ending_fails(sandbox: SalesforceSandbox):
    with http(sandbox) as api:
        job = api.post("/jobs/ingest", json={"object": "Contact", "operation": "insert"}).json()
        api.put(f"/jobs/ingest/{job['id']}/batches", content=b"LastName\r\nA\r\n",
                headers={"Content-Type": "text/csv"})
        api.patch(f"/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
        info = wait_done(api, job["id"])
        assert info["state"] == "Failed"
        assert info["errorMessage"] == ("ClientInputError : LineEnding is invalid on user data. "
                                        "Current LineEnding setting is LF")


def test_field_without_security_is_not_found(sandbox: SalesforceSandbox, tmp_path: Path):
    sandbox.org.upsert_field("Contact", FieldDef("Hidden__c", "string", length=10, custom=True))
    sf = client(sandbox)
    with pytest.raises(SalesforceOperationError, match="Field name not found : Hidden__c"):
        sf.bulk2.Contact.insert(write(tmp_path, "LastName,Hidden__c\nA,x\n"), wait=0.05)


def test_parent_by_external_id_in_a_relationship_column(sandbox: SalesforceSandbox, tmp_path: Path):
    org = sandbox.org
    org.upsert_field("Account", FieldDef("LostChurn_Stripe_Customer_ID__c", "string", length=64,
                                         external_id=True, custom=True))
    ps = org.schema.permission_set("LC")
    ps.field_permissions["Account.LostChurn_Stripe_Customer_ID__c"] = FieldPermission(True, True)
    org.upsert_permission_set(ps)
    account = org.insert("Account", {"Name": "Acme", "LostChurn_Stripe_Customer_ID__c": "cus_1"},
                         org.system).id
    sf = client(sandbox)
    path = write(tmp_path, "LostChurn_ID__c,LastName,Account.LostChurn_Stripe_Customer_ID__c\n"
                           "C-1,Ng,cus_1\nC-2,Lee,cus_404\n")
    [result] = sf.bulk2.Contact.upsert(path, external_id_field="LostChurn_ID__c", wait=0.05)
    assert result["numberRecordsFailed"] == 1
    assert contacts(sandbox)["C-1"]["AccountId"] == account
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(result["job_id"]))))
    assert failed[0]["sf__Error"] == ("INVALID_FIELD:Foreign key external ID: cus_404 not found for "
                                      "field LostChurn_Stripe_Customer_ID__c in entity Account:AccountId --")
    # #N/A in a relationship column clears the lookup
    path = write(tmp_path, "LostChurn_ID__c,Account.LostChurn_Stripe_Customer_ID__c\nC-1,#N/A\n")
    sf.bulk2.Contact.upsert(path, external_id_field="LostChurn_ID__c", wait=0.05)
    assert contacts(sandbox)["C-1"]["AccountId"] is None
