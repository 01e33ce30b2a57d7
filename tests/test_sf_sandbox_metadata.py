"""Metadata API of the Salesforce sandbox, driven by the real simple-salesforce client (deploy,
checkDeployStatus, mdapi over zeep) and raw HTTP for status codes and SOAP shapes."""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import simple_salesforce.metadata
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceResourceNotFound

from lc_console.sandbox.salesforce import metadata_api
from lc_console.sandbox.salesforce.sandbox import SalesforceSandbox

NS = {"soapenv": "http://schemas.xmlsoap.org/soap/envelope/",
      "m": "http://soap.sforce.com/2006/04/metadata"}
TERMINAL = ("Succeeded", "SucceededPartial", "Failed", "Canceled")

# --- metadata files ------------------------------------------------------------------------

RECOVERY = """<?xml version="1.0" encoding="UTF-8"?>
<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata">
    <label>LostChurn Recovery</label>
    <pluralLabel>LostChurn Recoveries</pluralLabel>
    <nameField>
        <label>Recovery Name</label>
        <type>AutoNumber</type>
        <displayFormat>LCR-{0000}</displayFormat>
    </nameField>
    <deploymentStatus>Deployed</deploymentStatus>
    <sharingModel>ReadWrite</sharingModel>
    <fields>
        <fullName>Recovery_ID__c</fullName>
        <label>Recovery ID</label>
        <type>Text</type>
        <length>64</length>
        <externalId>true</externalId>
        <unique>true</unique>
    </fields>
    <fields>
        <fullName>Status__c</fullName>
        <label>Status</label>
        <type>Picklist</type>
        <valueSet>
            <restricted>true</restricted>
            <valueSetDefinition>
                <sorted>false</sorted>
                <value><fullName>Started</fullName><default>true</default><label>Started</label></value>
                <value><fullName>Succeeded</fullName><default>false</default><label>Succeeded</label></value>
            </valueSetDefinition>
        </valueSet>
    </fields>
</CustomObject>
"""

CONTACT_FIELD = """<?xml version="1.0" encoding="UTF-8"?>
<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata">
    <fields>
        <fullName>LostChurn_ID__c</fullName>
        <label>LostChurn ID</label>
        <type>{type}</type>
        {extra}
    </fields>
</CustomObject>
"""
TEXT_EXTRA = "<length>64</length><externalId>true</externalId><unique>true</unique>"

EVENT = """<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata">
    <deploymentStatus>Deployed</deploymentStatus>
    <eventType>HighVolume</eventType>
    <publishBehavior>PublishAfterCommit</publishBehavior>
    <label>LostChurn Recovery Event</label>
    <pluralLabel>LostChurn Recovery Events</pluralLabel>
    <fields><fullName>Recovery_ID__c</fullName><label>Recovery ID</label><type>Text</type>
        <length>64</length></fields>
</CustomObject>"""

OPPORTUNITY = """<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata">
    {process}
    <recordTypes>
        <fullName>LostChurn_Recovery</fullName><active>true</active><label>Recovery</label>
        {reference}
    </recordTypes>
</CustomObject>"""
PROCESS = """<businessProcesses><fullName>LostChurn_Recovery_Process</fullName><isActive>true</isActive>
        <values><fullName>Prospecting</fullName><default>true</default></values>
        <values><fullName>Closed Won</fullName><default>false</default></values>
        <values><fullName>Closed Lost</fullName><default>false</default></values>
    </businessProcesses>"""

PERMISSION_SET = """<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">
    <label>LostChurn Integration</label>
    <objectPermissions>
        <allowCreate>true</allowCreate><allowDelete>false</allowDelete><allowEdit>true</allowEdit>
        <allowRead>true</allowRead><modifyAllRecords>false</modifyAllRecords>
        <object>LostChurn_Recovery__c</object><viewAllRecords>false</viewAllRecords>
    </objectPermissions>
    {fields}
</PermissionSet>"""


def field_permission(name: str) -> str:
    return (f"<fieldPermissions><editable>true</editable><field>{name}</field>"
            "<readable>true</readable></fieldPermissions>")


def package(types: dict[str, list[str]], name: str = "Package") -> str:
    body = "".join(
        "<types>" + "".join(f"<members>{m}</members>" for m in members) + f"<name>{t}</name></types>"
        for t, members in types.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?><{name} '
            f'xmlns="http://soap.sforce.com/2006/04/metadata">{body}<version>62.0</version></{name}>')


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return buf.getvalue()


def install_zip(contact_type: str = "Text", contact_extra: str = TEXT_EXTRA) -> bytes:
    fields = "".join(field_permission(f) for f in (
        "LostChurn_Recovery__c.Recovery_ID__c", "LostChurn_Recovery__c.Status__c",
        "Contact.LostChurn_ID__c"))
    return make_zip({
        "package.xml": package({
            "CustomObject": ["LostChurn_Recovery__c", "LostChurn_Recovery_Event__e"],
            "CustomField": ["Contact.LostChurn_ID__c"],
            "PermissionSet": ["LostChurn_Integration"],
        }),
        "objects/LostChurn_Recovery__c.object": RECOVERY,
        "objects/LostChurn_Recovery_Event__e.object": EVENT,
        "objects/Contact.object": CONTACT_FIELD.format(type=contact_type, extra=contact_extra),
        "permissionsets/LostChurn_Integration.permissionset": PERMISSION_SET.format(fields=fields),
    })


# --- fixtures ------------------------------------------------------------------------------

_zeep_clients: dict[tuple, object] = {}


@pytest.fixture(autouse=True)
def shared_wsdl(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse simple-salesforce's bundled 1.5 MB WSDL once: every Salesforce object otherwise
    spends about a second building its own zeep Client (the client itself is unchanged)."""
    real = simple_salesforce.metadata.Client

    def cached(wsdl: str, settings: object = None) -> object:
        key = (wsdl,)
        if key not in _zeep_clients:
            _zeep_clients[key] = real(wsdl, settings=settings)
        return _zeep_clients[key]

    monkeypatch.setattr(simple_salesforce.metadata, "Client", cached)


@pytest.fixture(scope="session")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sf-sandbox-ca")


def _start(ca_dir: Path, **kwargs: object) -> SalesforceSandbox:
    sb = SalesforceSandbox(cert_dir=ca_dir, **kwargs).start()  # type: ignore[arg-type]
    metadata_api.configure(sb.app, queue_seconds=0.05, run_seconds=0.3)
    return sb


@pytest.fixture
def sandbox(ca_dir: Path) -> Iterator[SalesforceSandbox]:
    sb = _start(ca_dir)
    yield sb
    sb.stop()


@pytest.fixture
def sandbox_org(ca_dir: Path) -> Iterator[SalesforceSandbox]:
    """A sandbox (non-production) org, where rollbackOnError=false is honoured."""
    sb = _start(ca_dir, is_sandbox=True)
    yield sb
    sb.stop()


def client(sb: SalesforceSandbox, user: object = None) -> Salesforce:
    session = requests.Session()
    session.verify = sb.ca_file
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
    return Salesforce(instance_url=sb.url, session_id=sb.login(user or sb.admin),  # type: ignore[arg-type]
                      session=session, version="62.0")


def deploy(sf: Salesforce, data: bytes, sandbox: bool = True, **options: object) -> tuple[str, list[dict]]:
    """Deploy and follow checkDeployStatus to the end: (async id, every status seen)."""
    started = sf.deploy(io.BytesIO(data), sandbox=sandbox, **options)
    assert started["state"] == "Queued"
    seen = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status = sf.checkDeployStatus(started["asyncId"])
        seen.append(status)
        if status["state"] in TERMINAL:
            sf._generate_headers()  # simple-salesforce leaves text/xml in sf.headers (ref §5.6)
            return started["asyncId"], seen
        time.sleep(0.03)
    raise AssertionError(f"deploy did not finish: {seen[-1]}")


def raw_status(sb: SalesforceSandbox, async_id: str) -> ET.Element:
    body = soap(sb, "<met:checkDeployStatus><met:asyncProcessId>" + async_id
                + "</met:asyncProcessId><met:includeDetails>true</met:includeDetails>"
                  "</met:checkDeployStatus>")
    assert body.status_code == 200, body.text
    result = ET.fromstring(body.content).find("soapenv:Body/m:checkDeployStatusResponse/m:result", NS)
    assert result is not None
    return result


def soap(sb: SalesforceSandbox, operation: str, token: str | None = None,
         path: str = "/services/Soap/m/62.0") -> requests.Response:
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:met="http://soap.sforce.com/2006/04/metadata"><soapenv:Header><met:SessionHeader>'
        f"<met:sessionId>{token or sb.login(sb.admin)}</met:sessionId></met:SessionHeader>"
        f"</soapenv:Header><soapenv:Body>{operation}</soapenv:Body></soapenv:Envelope>"
    )
    session = requests.Session()
    session.trust_env = False
    return session.post(sb.url + path, data=envelope.encode(), verify=sb.ca_file,
                        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})


def messages(result: ET.Element, kind: str) -> list[dict[str, str]]:
    out = []
    for node in result.findall(f"m:details/m:{kind}", NS):
        out.append({child.tag.split("}")[1]: (child.text or "") for child in node})
    return out


# --- deploy --------------------------------------------------------------------------------


def test_deploy_creates_schema_and_reports_progress(sandbox: SalesforceSandbox):
    # Long enough that a status poll lands in InProgress even on a loaded machine.
    metadata_api.configure(sandbox.app, queue_seconds=0.05, run_seconds=3)
    sf = client(sandbox)
    async_id, seen = deploy(sf, install_zip())
    states = [s["state"] for s in seen]
    assert states[-1] == "Succeeded"
    assert "InProgress" in states, states
    final = seen[-1]["deployment_detail"]
    assert final == {"total_count": "7", "failed_count": "0", "deployed_count": "7", "errors": []}
    in_progress = [s for s in seen if s["state"] == "InProgress"]
    assert all(s["state_detail"].startswith("Processing Type: ") for s in in_progress)

    schema = sandbox.org.schema
    recovery = schema.get("LostChurn_Recovery__c")
    assert recovery is not None and recovery.custom
    assert recovery.field("Recovery_ID__c").external_id
    assert recovery.name_field.auto_number
    assert schema.get("LostChurn_Recovery_Event__e").platform_event
    assert schema.get("Contact").field("LostChurn_ID__c").length == 64
    assert schema.permission_set("LostChurn_Integration") is not None

    result = raw_status(sandbox, async_id)
    assert result.findtext("m:done", namespaces=NS) == "true"
    assert result.findtext("m:success", namespaces=NS) == "true"
    assert result.findtext("m:id", namespaces=NS) == async_id
    successes = messages(result, "componentSuccesses")
    by_name = {m["fullName"]: m for m in successes}
    assert by_name["package.xml"]["componentType"] == ""
    field = by_name["Contact.LostChurn_ID__c"]
    assert (field["componentType"], field["created"], field["fileName"]) == \
        ("CustomField", "true", "objects/Contact.object")
    assert field["id"].startswith("00N") and len(field["id"]) == 18
    assert by_name["LostChurn_Recovery__c"]["id"].startswith("01I")
    assert by_name["LostChurn_Integration"]["id"].startswith("0PS")


def test_second_deploy_of_the_same_zip_changes_nothing(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    deploy(sf, install_zip())
    async_id, seen = deploy(sf, install_zip())
    assert seen[-1]["state"] == "Succeeded"
    changed = [m for m in messages(raw_status(sandbox, async_id), "componentSuccesses")
               if m["fullName"] != "package.xml" and m["changed"] == "true"]
    assert changed == []


def test_check_only_validates_without_changing_the_org(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    async_id, seen = deploy(sf, install_zip(), checkOnly=True)
    assert seen[-1]["state"] == "Succeeded"
    assert seen[-1]["deployment_detail"]["deployed_count"] == "7"
    assert raw_status(sandbox, async_id).findtext("m:checkOnly", namespaces=NS) == "true"
    assert sandbox.org.schema.get("LostChurn_Recovery__c") is None
    assert sandbox.org.schema.get("Contact").field("LostChurn_ID__c") is None


def test_failures_roll_back_everything_by_default(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    data = make_zip({
        "package.xml": package({"CustomObject": ["LostChurn_Recovery__c"],
                                "PermissionSet": ["LostChurn_Integration"]}),
        "objects/LostChurn_Recovery__c.object": RECOVERY,
        "permissionsets/LostChurn_Integration.permissionset":
            PERMISSION_SET.format(fields=field_permission("Contact.Nope__c")),
    })
    _, seen = deploy(sf, data, sandbox=False)  # production: rollbackOnError is forced on
    final = seen[-1]
    assert final["state"] == "Failed"
    assert final["deployment_detail"]["failed_count"] == "1"
    assert final["deployment_detail"]["errors"] == [{
        "type": "PermissionSet",
        "file": "permissionsets/LostChurn_Integration.permissionset",
        "status": "Error",
        "message": "In field: field - no CustomField named Contact.Nope__c found",
    }]
    assert sandbox.org.schema.get("LostChurn_Recovery__c") is None  # rolled back


def test_without_rollback_the_valid_components_land(sandbox_org: SalesforceSandbox):
    sf = client(sandbox_org)
    data = make_zip({
        "package.xml": package({"CustomObject": ["LostChurn_Recovery__c"],
                                "PermissionSet": ["LostChurn_Integration"]}),
        "objects/LostChurn_Recovery__c.object": RECOVERY,
        "permissionsets/LostChurn_Integration.permissionset":
            PERMISSION_SET.format(fields=field_permission("Contact.Nope__c")),
    })
    _, seen = deploy(sf, data, sandbox=True, rollbackOnError=False)
    assert seen[-1]["state"] == "SucceededPartial"
    assert sandbox_org.org.schema.get("LostChurn_Recovery__c") is not None
    assert sandbox_org.org.schema.permission_set("LostChurn_Integration") is None


FAILURES = {
    "unknown field type": (
        {"package.xml": package({"CustomField": ["Contact.LostChurn_ID__c"]}),
         "objects/Contact.object": CONTACT_FIELD.format(type="hat", extra="")},
        "CustomField", "Error parsing file: 'hat' is not a valid value for the enum 'FieldType'"),
    "invalid XML": (
        {"package.xml": package({"CustomObject": ["LostChurn_Recovery__c"]}),
         "objects/LostChurn_Recovery__c.object": RECOVERY.replace("</fields>", "", 1)},
        "CustomObject",
        'Error parsing file: The element type "fields" must be terminated by the matching '
        'end-tag "</fields>".'),
    "misspelt element": (
        {"package.xml": package({"CustomObject": ["LostChurn_Recovery__c"]}),
         "objects/LostChurn_Recovery__c.object": RECOVERY.replace("<length>64</length>",
                                                                  "<lenght>64</lenght>")},
        "CustomObject",
        "Error parsing file: Element {http://soap.sforce.com/2006/04/metadata}lenght invalid at "
        "this location in type CustomField"),
    "record type without business process": (
        {"package.xml": package({"RecordType": ["Opportunity.LostChurn_Recovery"]}),
         "objects/Opportunity.object": OPPORTUNITY.format(process="", reference="")},
        "RecordType", "Record Type must reference a valid Sales Process"),
    "business process with an unknown stage": (
        {"package.xml": package({"BusinessProcess": ["Opportunity.LostChurn_Recovery_Process"]}),
         "objects/Opportunity.object": OPPORTUNITY.format(
             process=PROCESS.replace("Closed Won", "Won Back"), reference="").replace(
             "<recordTypes>", "<!--").replace("</recordTypes>", "-->")},
        "BusinessProcess", "Picklist value: Won Back in picklist: StageName not found"),
    "permission set on a missing field": (
        {"package.xml": package({"PermissionSet": ["LostChurn_Integration"]}),
         "permissionsets/LostChurn_Integration.permissionset": PERMISSION_SET.format(
             fields=field_permission("Contact.Nope__c")).replace(
             "<object>LostChurn_Recovery__c</object>", "<object>Contact</object>")},
        "PermissionSet", "In field: field - no CustomField named Contact.Nope__c found"),
    "member missing from the zip": (
        {"package.xml": package({"CustomObject": ["LostChurn_Recovery__c"]})},
        "CustomObject",
        "An object 'LostChurn_Recovery__c' of type CustomObject was named in package.xml, but "
        "was not found in zipped directory"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_component_failures(sandbox: SalesforceSandbox, case: str):
    files, component_type, problem = FAILURES[case]
    sf = client(sandbox)
    async_id, seen = deploy(sf, make_zip(files))
    assert seen[-1]["state"] == "Failed"
    failures = messages(raw_status(sandbox, async_id), "componentFailures")
    assert [(f["componentType"], f["problem"]) for f in failures] == [(component_type, problem)]
    assert failures[0]["problemType"] == "Error" and failures[0]["success"] == "false"


def test_parse_errors_carry_line_and_column(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    text = CONTACT_FIELD.format(type="hat", extra="")
    async_id, _ = deploy(sf, make_zip({"package.xml": package({"CustomField": ["Contact.LostChurn_ID__c"]}),
                                       "objects/Contact.object": text}))
    failure = messages(raw_status(sandbox, async_id), "componentFailures")[0]
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "<type>hat</type>" in row)
    assert failure["lineNumber"] == str(line)
    assert int(failure["columnNumber"]) > 0


def test_record_type_with_its_business_process_deploys(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    files = {
        "package.xml": package({"BusinessProcess": ["Opportunity.LostChurn_Recovery_Process"],
                                "RecordType": ["Opportunity.LostChurn_Recovery"]}),
        "objects/Opportunity.object": OPPORTUNITY.format(
            process=PROCESS, reference="<businessProcess>LostChurn_Recovery_Process</businessProcess>"),
    }
    _, seen = deploy(sf, make_zip(files))
    assert seen[-1]["state"] == "Succeeded"
    opportunity = sandbox.org.schema.get("Opportunity")
    rt = opportunity.record_type("LostChurn_Recovery")
    assert rt is not None and rt.business_process == "LostChurn_Recovery_Process"
    assert rt.id and rt.id.startswith("012")


def test_incompatible_field_type_change_is_refused(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    deploy(sf, make_zip({"package.xml": package({"CustomField": ["Contact.LostChurn_ID__c"]}),
                         "objects/Contact.object": CONTACT_FIELD.format(type="Text", extra=TEXT_EXTRA)}))
    lookup = ("<referenceTo>Account</referenceTo><relationshipName>LostChurn_Contacts"
              "</relationshipName>")
    async_id, seen = deploy(sf, make_zip({
        "package.xml": package({"CustomField": ["Contact.LostChurn_ID__c"]}),
        "objects/Contact.object": CONTACT_FIELD.format(type="Lookup", extra=lookup)}))
    assert seen[-1]["state"] == "Failed"
    failure = messages(raw_status(sandbox, async_id), "componentFailures")[0]
    assert failure["problem"] == "Cannot update a field to a Lookup from something else"
    assert sandbox.org.schema.get("Contact").field("LostChurn_ID__c").type == "string"


def test_missing_package_xml(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    async_id, seen = deploy(sf, make_zip({"objects/Contact.object": CONTACT_FIELD}))
    assert seen[-1]["state"] == "Failed"
    failure = messages(raw_status(sandbox, async_id), "componentFailures")[0]
    assert (failure["fullName"], failure["problem"]) == ("package.xml", "No package.xml found")


def test_destructive_removal_deletes_records_and_clears_fields(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    deploy(sf, install_zip())
    org = sandbox.org
    for i in range(3):
        assert org.insert("LostChurn_Recovery__c", {"Recovery_ID__c": f"R-{i}"}, org.system).success
    contact = org.insert("Contact", {"LastName": "Ng", "LostChurn_ID__c": "C-1"}, org.system)
    assert contact.success
    removal = make_zip({
        "package.xml": package({}),
        "destructiveChanges.xml": package({
            "CustomObject": ["LostChurn_Recovery__c", "LostChurn_Recovery_Event__e"],
            "CustomField": ["Contact.LostChurn_ID__c", "Contact.Never_Installed__c"],
            "PermissionSet": ["LostChurn_Integration"],
        }),
    })
    async_id, seen = deploy(sf, removal)
    assert seen[-1]["state"] == "Succeeded"
    assert org.schema.get("LostChurn_Recovery__c") is None
    assert org.schema.get("LostChurn_Recovery_Event__e") is None
    assert "LostChurn_Recovery__c" not in org.tables
    assert org.schema.permission_set("LostChurn_Integration") is None
    assert org.schema.get("Contact").field("LostChurn_ID__c") is None
    assert "LostChurn_ID__c" not in org.records("Contact")[0]
    successes = {m["fullName"]: m for m in messages(raw_status(sandbox, async_id), "componentSuccesses")}
    assert successes["LostChurn_Recovery__c"]["deleted"] == "true"
    skipped = successes["Contact.Never_Installed__c"]
    assert (skipped["deleted"], skipped["problemType"]) == ("false", "Warning")


def test_record_types_cannot_be_deleted_through_the_api(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    deploy(sf, make_zip({
        "package.xml": package({"BusinessProcess": ["Opportunity.LostChurn_Recovery_Process"],
                                "RecordType": ["Opportunity.LostChurn_Recovery"]}),
        "objects/Opportunity.object": OPPORTUNITY.format(
            process=PROCESS, reference="<businessProcess>LostChurn_Recovery_Process</businessProcess>"),
    }))
    async_id, seen = deploy(sf, make_zip({
        "package.xml": package({}),
        "destructiveChanges.xml": package({"RecordType": ["Opportunity.LostChurn_Recovery"]}),
    }))
    assert seen[-1]["state"] == "Failed"
    failure = messages(raw_status(sandbox, async_id), "componentFailures")[0]
    assert failure["problem"] == "Cannot delete record type through API"


# --- access, faults, usage -----------------------------------------------------------------


def test_user_without_customize_application_gets_insufficient_access(sandbox: SalesforceSandbox):
    sf = client(sandbox, sandbox.user)
    with pytest.raises(SalesforceError) as info:
        sf.deploy(io.BytesIO(install_zip()), sandbox=True)
    assert info.value.status == 500
    fault = ET.fromstring(info.value.content)
    assert fault.findtext("soapenv:Body/soapenv:Fault/faultcode", namespaces=NS) == "sf:INSUFFICIENT_ACCESS"
    assert fault.findtext("soapenv:Body/soapenv:Fault/faultstring", namespaces=NS) == (
        "INSUFFICIENT_ACCESS: use of the Metadata API requires a user with the ModifyAllData or "
        "ModifyMetadata permissions")
    assert sandbox.org.schema.get("LostChurn_Recovery__c") is None


def test_invalid_session_is_a_500_fault(sandbox: SalesforceSandbox):
    resp = soap(sandbox, "<met:describeMetadata><met:asOfVersion>62.0</met:asOfVersion>"
                         "</met:describeMetadata>", token="00Dxx!nope")
    assert resp.status_code == 500
    root = ET.fromstring(resp.content)
    assert root.findtext("soapenv:Body/soapenv:Fault/faultcode", namespaces=NS) == "sf:INVALID_SESSION_ID"


def test_unknown_operation_and_unknown_deploy_id(sandbox: SalesforceSandbox):
    resp = soap(sandbox, "<met:frobnicate/>")
    assert resp.status_code == 500 and b"No operation available for request" in resp.content
    resp = soap(sandbox, "<met:checkDeployStatus><met:asyncProcessId>0Af8d0000000999AAA"
                         "</met:asyncProcessId></met:checkDeployStatus>")
    assert resp.status_code == 500 and b"sf:INVALID_ID_FIELD" in resp.content


def test_each_soap_call_counts_against_api_usage(sandbox: SalesforceSandbox):
    before = sandbox.usage()
    resp = soap(sandbox, "<met:describeMetadata><met:asOfVersion>62.0</met:asOfVersion>"
                         "</met:describeMetadata>", path="/services/Soap/m/62.0/deployRequest")
    assert resp.status_code == 200
    assert resp.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert sandbox.usage() == before + 1


def test_clock_drives_deploys(sandbox: SalesforceSandbox):
    metadata_api.configure(sandbox.app, queue_seconds=600, run_seconds=600)
    sf = client(sandbox)
    started = sf.deploy(io.BytesIO(install_zip()), sandbox=True)
    assert sf.checkDeployStatus(started["asyncId"])["state"] == "Pending"
    sandbox.advance_clock(600)
    status = sf.checkDeployStatus(started["asyncId"])
    assert status["state"] == "InProgress" and status["deployment_detail"]["deployed_count"] == "0"
    sandbox.advance_clock(300)
    half = sf.checkDeployStatus(started["asyncId"])["deployment_detail"]["deployed_count"]
    assert half == "3"
    sandbox.advance_clock(300)
    assert sf.checkDeployStatus(started["asyncId"])["state"] == "Succeeded"


# --- read / list / describe ----------------------------------------------------------------


def test_read_and_list_metadata_through_zeep(sandbox: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sandbox.ca_file)  # zeep uses its own session
    sf = client(sandbox)
    deploy(sf, install_zip())
    md = sf.mdapi
    objects = md.list_metadata([md.ListMetadataQuery(type="CustomObject")])
    recovery = next(p for p in objects if p.fullName == "LostChurn_Recovery__c")
    assert (recovery.fileName, recovery.type) == ("objects/LostChurn_Recovery__c.object", "CustomObject")
    fields = {p.fullName for p in md.list_metadata([md.ListMetadataQuery(type="CustomField")])}
    assert {"Contact.LostChurn_ID__c", "LostChurn_Recovery__c.Status__c"} <= fields

    field, missing = md.CustomField.read(["Contact.LostChurn_ID__c", "Contact.Nope__c"])
    assert (field.fullName, field.type, field.length, field.externalId, field.unique) == \
        ("Contact.LostChurn_ID__c", "Text", 64, True, True)
    assert missing.fullName is None
    obj = md.CustomObject.read("LostChurn_Recovery__c")
    assert obj.nameField.type == "AutoNumber" and obj.sharingModel == "ReadWrite"
    status = next(f for f in obj.fields if f.fullName == "Status__c")
    assert [v.fullName for v in status.valueSet.valueSetDefinition.value] == ["Started", "Succeeded"]
    ps = md.PermissionSet.read("LostChurn_Integration")
    assert {p.field for p in ps.fieldPermissions} >= {"Contact.LostChurn_ID__c"}
    describe = md.describe_metadata()
    assert "CustomObject" in [o.xmlName for o in describe.metadataObjects]


# --- the REST side enforces what was deployed ----------------------------------------------


def test_deployed_fields_need_an_assigned_permission_set(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    deploy(sf, install_zip())
    names = {f["name"] for f in sf.Contact.describe()["fields"]}
    assert "LostChurn_ID__c" not in names  # deployed, but no field-level security yet
    ps_id = sf.query("SELECT Id FROM PermissionSet WHERE Name = 'LostChurn_Integration'")["records"][0]["Id"]
    sf.PermissionSetAssignment.create({"AssigneeId": sandbox.admin.id, "PermissionSetId": ps_id})
    describe = sf.Contact.describe()
    field = next(f for f in describe["fields"] if f["name"] == "LostChurn_ID__c")
    assert (field["type"], field["length"], field["externalId"]) == ("string", 64, True)
    recovery = sf.LostChurn_Recovery__c.describe()
    assert {"Recovery_ID__c", "Status__c"} <= {f["name"] for f in recovery["fields"]}
    created = sf.LostChurn_Recovery__c.create({"Recovery_ID__c": "R-1", "Status__c": "Started"})
    assert created["success"]
    name = sf.LostChurn_Recovery__c.get(created["id"])["Name"]
    assert name == "LCR-0001"  # the deployed AutoNumber name field

    removal = make_zip({"package.xml": package({}), "destructiveChanges.xml": package(
        {"CustomObject": ["LostChurn_Recovery__c"]})})
    deploy(sf, removal)
    with pytest.raises(SalesforceResourceNotFound):
        sf.LostChurn_Recovery__c.describe()


def test_fields_on_a_standard_object_are_enforced_by_rest(sandbox: SalesforceSandbox):
    sf = client(sandbox)
    deploy(sf, install_zip())
    sandbox.org.assign_permission_set(sandbox.admin.id, "LostChurn_Integration")
    sf.Contact.create({"LastName": "Ng", "LostChurn_ID__c": "C-1"})
    with pytest.raises(SalesforceError) as info:  # unique external id
        sf.Contact.create({"LastName": "Ng", "LostChurn_ID__c": "c-1"})
    assert info.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    with pytest.raises(SalesforceError) as info:  # Text(64)
        sf.Contact.create({"LastName": "Ng", "LostChurn_ID__c": "x" * 65})
    assert info.value.content[0]["errorCode"] == "STRING_TOO_LONG"


def test_cancel_a_queued_deploy(sandbox: SalesforceSandbox):
    metadata_api.configure(sandbox.app, queue_seconds=600)
    sf = client(sandbox)
    started = sf.deploy(io.BytesIO(install_zip()), sandbox=True)
    resp = soap(sandbox, f"<met:cancelDeploy><met:String>{started['asyncId']}</met:String></met:cancelDeploy>")
    result = ET.fromstring(resp.content).find("soapenv:Body/m:cancelDeployResponse/m:result", NS)
    assert result is not None and result.findtext("m:done", namespaces=NS) == "true"
    status = raw_status(sandbox, started["asyncId"])
    assert status.findtext("m:status", namespaces=NS) == "Canceled"
    assert status.findtext("m:canceledByName", namespaces=NS) == sandbox.org.user_record(sandbox.admin.id)["Name"]
    sandbox.advance_clock(600)
    assert sf.checkDeployStatus(started["asyncId"])["state"] == "Canceled"
    assert sandbox.org.schema.get("LostChurn_Recovery__c") is None


def test_deployed_schema_survives_a_restart(ca_dir: Path, tmp_path: Path):
    state = tmp_path / "org.json"
    sb = _start(ca_dir, state_file=state)
    try:
        deploy(client(sb), install_zip())
    finally:
        sb.stop()
    sb = _start(ca_dir, state_file=state)
    try:
        assert sb.org.schema.get("LostChurn_Recovery_Event__e").platform_event
        async_id, seen = deploy(client(sb), install_zip())
        assert seen[-1]["state"] == "Succeeded"
        changed = [m["fullName"] for m in messages(raw_status(sb, async_id), "componentSuccesses")
                   if m["changed"] == "true" and m["fullName"] != "package.xml"]
        assert changed == []  # everything deployed before the restart is still there, as it was
    finally:
        sb.stop()
