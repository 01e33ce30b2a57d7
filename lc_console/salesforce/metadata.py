"""Metadata API: build deploy zips from the manifest, deploy, follow checkDeployStatus, read.

Deploy goes through simple-salesforce's `sf.deploy()` (public, handles base64 and options).
checkDeployStatus and readMetadata are sent as small SOAP envelopes over `sf.session`:
simple-salesforce's `checkDeployStatus()` drops each failure's `fullName` (an admin needs to
know *which* field failed, not just `objects/Contact.object`), and its zeep-based `sf.mdapi`
uses its own HTTP session, which would ignore `tls.ca_bundle` (reference §5.6, §5.7).
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from string import Template
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceGeneralError

from lc_console.salesforce.schema_manifest import (
    BusinessProcessSpec,
    ComponentType,
    FieldKind,
    FieldSpec,
    Manifest,
    ObjectKind,
    ObjectSpec,
    RecordTypeSpec,
)

MD_NS = "http://soap.sforce.com/2006/04/metadata"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_NS = {"m": MD_NS, "soapenv": SOAP_NS}

TERMINAL_STATES = frozenset({"Succeeded", "SucceededPartial", "Failed", "Canceled"})
READ_BATCH = 10  # readMetadata accepts at most 10 names per call


# --- templates ----------------------------------------------------------------------------


class Xml(str):
    """A fragment that is already XML: inserted into a template without escaping."""


_TEMPLATE_CACHE: dict[str, Template] = {}


def _template(name: str) -> Template:
    if name not in _TEMPLATE_CACHE:
        text = (files("lc_console.salesforce") / "templates" / f"{name}.xml").read_text("utf-8")
        _TEMPLATE_CACHE[name] = Template(text)
    return _TEMPLATE_CACHE[name]


def _value(v: object) -> str:
    if isinstance(v, Xml):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return escape(str(v))


def render(template: str, /, **values: object) -> Xml:
    """Fill templates/<template>.xml; plain values are XML-escaped, Xml fragments are not."""
    return Xml(_template(template).substitute({k: _value(v) for k, v in values.items()}))


def _join(fragments: Iterable[str]) -> Xml:
    return Xml("".join(fragments))


# --- rendering components -----------------------------------------------------------------


def render_field(spec: FieldSpec) -> Xml:
    common = {"name": spec.name, "label": spec.label, "description": spec.description}
    kind = spec.kind
    if kind is FieldKind.TEXT:
        if spec.on_event:
            return render("field_event_text", length=spec.length, **common)
        return render("field_text", length=spec.length, external_id=spec.external_id,
                      unique=spec.unique, **common)
    if kind in (FieldKind.NUMBER, FieldKind.CURRENCY):
        return render("field_number", type=kind.value, precision=spec.precision,
                      scale=spec.scale, **common)
    if kind is FieldKind.PICKLIST:
        values = _join(render("picklist_value", api_name=v.api_name, label=v.label,
                              default=v.default) for v in spec.values)
        return render("field_picklist", values=values, **common)
    if kind is FieldKind.LOOKUP:
        return render("field_lookup", reference_to=spec.reference_to,
                      relationship_name=spec.relationship_name,
                      relationship_label=spec.relationship_label, **common)
    if kind is FieldKind.CHECKBOX:
        return render("field_checkbox", **common)
    return render("field_plain", type=kind.value, **common)


def render_business_process(spec: BusinessProcessSpec) -> Xml:
    values = _join(render("business_process_value", stage=s, default=(s == spec.default))
                   for s in spec.values)
    return render("business_process", name=spec.name, description=spec.description,
                  values=values)


def render_record_type(spec: RecordTypeSpec, active: bool = True) -> Xml:
    return render("record_type", name=spec.name, label=spec.label, active=active,
                  business_process=spec.business_process, description=spec.description)


def render_permission_set(manifest: Manifest) -> Xml:
    ps = manifest.permission_set
    field_perms = _join(render("permission_field", field=f.full_name)
                        for f in sorted(manifest.granted_fields(), key=lambda f: f.full_name))
    object_perms = _join(
        render("permission_object", object=o.name, allow_edit=o.kind is ObjectKind.CUSTOM)
        for o in sorted(manifest.owned_objects(), key=lambda o: o.name)
    )
    rt_vis = _join(render("permission_record_type", record_type=rt.full_name)
                   for rt in sorted(manifest.record_types, key=lambda r: r.full_name))
    return render("permission_set", label=ps.label, description=ps.description,
                  field_permissions=field_perms, object_permissions=object_perms,
                  record_type_visibilities=rt_vis)


def render_object_file(
    obj: ObjectSpec,
    fields: Sequence[FieldSpec],
    business_processes: Sequence[BusinessProcessSpec] = (),
    record_types: Sequence[RecordTypeSpec] = (),
    whole: bool = False,
    active: bool = True,
) -> Xml:
    """objects/<Name>.object: the whole object definition (`whole`, for a custom object or
    platform event being created) or only the listed child components."""
    field_xml = _join(render_field(f) for f in sorted(fields, key=lambda f: f.name))
    if whole and obj.kind is ObjectKind.CUSTOM:
        return render("custom_object", label=obj.label, plural_label=obj.plural_label,
                      description=obj.description, name_field_label=obj.name_field_label,
                      display_format=obj.name_display_format, fields=field_xml)
    if whole and obj.kind is ObjectKind.EVENT:
        return render("platform_event", label=obj.label, plural_label=obj.plural_label,
                      description=obj.description, fields=field_xml)
    bps = _join(render_business_process(b) for b in sorted(business_processes, key=lambda b: b.name))
    rts = _join(render_record_type(r, active) for r in sorted(record_types, key=lambda r: r.name))
    return render("fields_only_object", fields=field_xml, business_processes=bps,
                  record_types=rts)


def render_package(members: dict[str, Iterable[str]], api_version: str) -> Xml:
    types = []
    for type_name in sorted(members):
        names = sorted(set(members[type_name]))
        if not names:
            continue
        member_xml = "".join(f"        <members>{escape(n)}</members>\n" for n in names)
        types.append(render("package_types", members=Xml(member_xml), name=type_name))
    return render("package", types=_join(types), version=api_version)


# --- deploy selections and zips -----------------------------------------------------------


@dataclass
class Selection:
    """What one deploy carries. Field specs may differ from the manifest's when the plan
    widened them to keep what the org already holds (longer text, extra picklist values)."""

    whole_objects: set[str] = field(default_factory=set)
    fields: list[FieldSpec] = field(default_factory=list)
    business_processes: list[BusinessProcessSpec] = field(default_factory=list)
    record_types: list[RecordTypeSpec] = field(default_factory=list)
    permission_set: bool = False

    def is_empty(self) -> bool:
        return not (self.whole_objects or self.fields or self.business_processes
                    or self.record_types or self.permission_set)

    def members(self, manifest: Manifest) -> dict[str, list[str]]:
        m: dict[str, list[str]] = {t.value: [] for t in ComponentType}
        m[ComponentType.CUSTOM_OBJECT].extend(self.whole_objects)
        m[ComponentType.CUSTOM_FIELD].extend(f.full_name for f in self.fields)
        m[ComponentType.BUSINESS_PROCESS].extend(b.full_name for b in self.business_processes)
        m[ComponentType.RECORD_TYPE].extend(r.full_name for r in self.record_types)
        if self.permission_set:
            m[ComponentType.PERMISSION_SET].append(manifest.permission_set.name)
        return m


def full_selection(manifest: Manifest) -> Selection:
    return Selection(
        whole_objects={o.name for o in manifest.owned_objects()},
        fields=list(manifest.fields),
        business_processes=list(manifest.business_processes),
        record_types=list(manifest.record_types),
        permission_set=True,
    )


def deploy_files(manifest: Manifest, selection: Selection, api_version: str) -> dict[str, str]:
    """Path -> XML text of every file in the deploy zip (metadata format, singlePackage)."""
    out: dict[str, str] = {}
    touched = ({f.sobject for f in selection.fields} | set(selection.whole_objects)
               | {b.sobject for b in selection.business_processes}
               | {r.sobject for r in selection.record_types})
    for name in sorted(touched):
        obj = manifest.object(name)
        out[f"objects/{name}.object"] = render_object_file(
            obj,
            [f for f in selection.fields if f.sobject == name],
            [b for b in selection.business_processes if b.sobject == name],
            [r for r in selection.record_types if r.sobject == name],
            whole=name in selection.whole_objects,
        )
    if selection.permission_set:
        ps = manifest.permission_set.name
        out[f"permissionsets/{ps}.permissionset"] = render_permission_set(manifest)
    out["package.xml"] = render_package(selection.members(manifest), api_version)
    return out


def destructive_files(manifest: Manifest, members: dict[str, Iterable[str]], api_version: str,
                      deactivate: Sequence[RecordTypeSpec] = ()) -> dict[str, str]:
    """destructiveChanges.xml listing what to delete, and a package.xml that deactivates the
    record types: Salesforce does not delete record types through the API."""
    out: dict[str, str] = {"destructiveChanges.xml": render_package(members, api_version)}
    for sobject in sorted({r.sobject for r in deactivate}):
        out[f"objects/{sobject}.object"] = render_object_file(
            manifest.object(sobject), [], [], [r for r in deactivate if r.sobject == sobject],
            active=False)
    out["package.xml"] = render_package(
        {ComponentType.RECORD_TYPE.value: [r.full_name for r in deactivate]}, api_version)
    return out


def build_zip(files_: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(files_):
            info = zipfile.ZipInfo(path, date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files_[path].encode("utf-8"))
    return buf.getvalue()


# --- SOAP over sf.session -----------------------------------------------------------------


class MetadataError(Exception):
    """A Metadata API call failed; `code` is Salesforce's fault code (e.g. INSUFFICIENT_ACCESS)."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


def _envelope(sf: Salesforce, body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns:met="{MD_NS}">'
        "<soapenv:Header><met:CallOptions><met:client>lc-console</met:client></met:CallOptions>"
        f"<met:SessionHeader><met:sessionId>{escape(sf.session_id)}</met:sessionId>"
        "</met:SessionHeader></soapenv:Header>"
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ).encode()


def _fault(text: str) -> MetadataError | None:
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    fault = root.find("soapenv:Body/soapenv:Fault", _NS)
    if fault is None:
        return None
    code = (fault.findtext("faultcode") or "").split(":")[-1]
    message = fault.findtext("faultstring") or code or "SOAP fault"
    return MetadataError(message, code)


def soap_call(sf: Salesforce, body: str, response_element: str, timeout: float = 120) -> ET.Element:
    """POST one Metadata API operation; returns the <...Response> element or raises."""
    resp = sf.session.post(
        sf.metadata_url,
        data=_envelope(sf, body),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'},
        timeout=timeout,
    )
    if resp.status_code != 200:
        fault = _fault(resp.text)
        if fault is not None and fault.code == "INVALID_SESSION_ID":
            # The same exception simple-salesforce raises for a failed deploy call, so the
            # token manager's call() refreshes and runs the operation again.
            raise SalesforceGeneralError(sf.metadata_url, resp.status_code, "metadata", resp.text)
        if fault is not None:
            raise fault
        raise MetadataError(f"Metadata API answered HTTP {resp.status_code}", f"HTTP_{resp.status_code}")
    try:
        root = ET.fromstring(resp.text)
    except ET.ParseError as exc:
        raise MetadataError(f"Metadata API answer is not XML ({exc})") from None
    found = root.find(f"soapenv:Body/m:{response_element}", _NS)
    if found is None:
        fault = _fault(resp.text)
        raise fault or MetadataError(f"Metadata API answer has no {response_element}")
    return found


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def element_to_dict(el: ET.Element) -> Any:
    """Metadata XML -> dict; repeated children become lists (always, for known list names)."""
    children = list(el)
    if not children:
        return (el.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        key = _local(child.tag)
        value = element_to_dict(child)
        if key in out:
            if not isinstance(out[key], list) or key not in _LISTS:
                out[key] = [out[key]]
            out[key].append(value)
        else:
            out[key] = [value] if key in _LISTS else value
    return out


_LISTS = frozenset({
    "fields", "values", "value", "fieldPermissions", "objectPermissions",
    "recordTypeVisibilities", "recordTypes", "businessProcesses", "referenceTo",
    "componentFailures", "componentSuccesses", "records",
})


def read_metadata(sf: Salesforce, type_name: str, full_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """readMetadata in batches of 10: fullName -> record (as dict) for those that exist."""
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(full_names), READ_BATCH):
        batch = full_names[i:i + READ_BATCH]
        names = "".join(f"<met:fullNames>{escape(n)}</met:fullNames>" for n in batch)
        body = f"<met:readMetadata><met:type>{escape(type_name)}</met:type>{names}</met:readMetadata>"
        resp = soap_call(sf, body, "readMetadataResponse")
        for rec in resp.findall("m:result/m:records", _NS):
            if rec.get(f"{{{XSI_NS}}}nil") == "true":
                continue
            data = element_to_dict(rec)
            if isinstance(data, dict) and data.get("fullName"):
                found[data["fullName"]] = data
    return found


# --- deploy and follow --------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentFailure:
    component_type: str
    full_name: str
    problem: str
    file_name: str = ""
    line: str = ""

    def line_text(self) -> str:
        where = f"{self.component_type} {self.full_name}".strip() or self.file_name or "deploy"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class DeployStatus:
    id: str
    status: str  # Pending | InProgress | Succeeded | SucceededPartial | Failed | Canceling | Canceled
    done: bool
    success: bool
    check_only: bool
    state_detail: str
    total: int
    deployed: int
    errors: int
    error_message: str
    failures: tuple[ComponentFailure, ...]

    @property
    def finished(self) -> bool:
        return self.done or self.status in TERMINAL_STATES


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def parse_deploy_result(result: ET.Element) -> DeployStatus:
    def t(name: str) -> str:
        return (result.findtext(f"m:{name}", "", _NS) or "").strip()

    failures = []
    for f in result.findall("m:details/m:componentFailures", _NS):
        def ft(name: str, el: ET.Element = f) -> str:
            return (el.findtext(f"m:{name}", "", _NS) or "").strip()

        failures.append(ComponentFailure(ft("componentType"), ft("fullName"),
                                         ft("problem") or "(no message)", ft("fileName"),
                                         ft("lineNumber")))
    status = t("status")
    return DeployStatus(
        id=t("id"), status=status, done=t("done").lower() == "true",
        success=t("success").lower() == "true", check_only=t("checkOnly").lower() == "true",
        state_detail=t("stateDetail"), total=_int(t("numberComponentsTotal")),
        deployed=_int(t("numberComponentsDeployed")), errors=_int(t("numberComponentErrors")),
        error_message=t("errorMessage"), failures=tuple(failures),
    )


def check_deploy_status(sf: Salesforce, async_id: str) -> DeployStatus:
    body = (f"<met:checkDeployStatus><met:asyncProcessId>{escape(async_id)}</met:asyncProcessId>"
            "<met:includeDetails>true</met:includeDetails></met:checkDeployStatus>")
    resp = soap_call(sf, body, "checkDeployStatusResponse")
    result = resp.find("m:result", _NS)
    if result is None:
        raise MetadataError("checkDeployStatus answer has no result")
    return parse_deploy_result(result)


def start_deploy(sf: Salesforce, zip_bytes: bytes, *, check_only: bool, sandbox: bool,
                 ignore_warnings: bool = False) -> str:
    """Start a deploy; returns its async id. All-or-nothing, no Apex tests (no Apex inside)."""
    try:
        result = sf.deploy(io.BytesIO(zip_bytes), sandbox, checkOnly=check_only,
                           rollbackOnError=True, testLevel="NoTestRun",
                           ignoreWarnings=ignore_warnings)
    finally:
        # simple-salesforce merges its SOAP headers into sf.headers (reference §5.6): put the
        # REST defaults back, or the next restful() POST would go out as text/xml.
        sf._generate_headers()
    async_id = result.get("asyncId")
    if not async_id:
        raise MetadataError("Salesforce did not return a deploy id")
    return str(async_id)


ProgressCallback = Callable[[DeployStatus], None]


class DeployTimeout(MetadataError):
    def __init__(self, async_id: str, seconds: float):
        super().__init__(
            f"The deploy {async_id} was still running after {int(seconds)} s. It continues in "
            "Salesforce: see Setup > Deployment Status, then run the command again.",
            "TIMEOUT",
        )
        self.async_id = async_id


def follow_deploy(sf: Salesforce, async_id: str, on_progress: ProgressCallback | None = None,
                  poll_interval: float = 1.0, max_interval: float = 5.0,
                  timeout: float = 1800.0, sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> DeployStatus:
    """Poll checkDeployStatus until the deploy is done, reporting each answer."""
    start = clock()
    interval = poll_interval
    while True:
        status = check_deploy_status(sf, async_id)
        if on_progress:
            on_progress(status)
        if status.finished:
            return status
        if clock() - start > timeout:
            raise DeployTimeout(async_id, timeout)
        sleep(interval)
        interval = min(max_interval, interval * 1.5)


def deploy_and_wait(sf: Salesforce, zip_bytes: bytes, *, check_only: bool, sandbox: bool,
                    on_progress: ProgressCallback | None = None, poll_interval: float = 1.0,
                    max_poll_interval: float = 5.0, ignore_warnings: bool = False,
                    timeout: float = 1800.0) -> DeployStatus:
    async_id = start_deploy(sf, zip_bytes, check_only=check_only, sandbox=sandbox,
                            ignore_warnings=ignore_warnings)
    return follow_deploy(sf, async_id, on_progress, poll_interval=poll_interval,
                         max_interval=max_poll_interval, timeout=timeout)
