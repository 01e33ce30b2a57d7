"""Metadata API routes: SOAP 1.1 at /services/Soap/m/NN.N (any path suffix, as simple-salesforce
posts to .../deployRequest[/id]); the operation is the body element.

Implemented: deploy, checkDeployStatus, cancelDeploy, readMetadata, listMetadata,
describeMetadata. Every call counts as one API call (the server does that for "soap" routes,
and answers a bad session with the sf:INVALID_SESSION_ID fault). A user without Modify All
Data / Modify Metadata gets Salesforce's INSUFFICIENT_ACCESS fault; deploying also needs
Customize Application.

Tests and the demo tune deploy timing with `configure(app, queue_seconds=, run_seconds=)`.
"""

from __future__ import annotations

import base64
import binascii
import threading
from datetime import datetime

from lc_console.sandbox.salesforce.errors import ApiError
from lc_console.sandbox.salesforce.http import XML_TYPE, Request, Response, route
from lc_console.sandbox.salesforce.metadata_deploy import DeployMessage, DeployOptions
from lc_console.sandbox.salesforce.metadata_jobs import DeployJob, DeployQueue
from lc_console.sandbox.salesforce.metadata_read import (
    MAX_LIST_QUERIES,
    MAX_READ_NAMES,
    describe_metadata_xml,
    list_components,
    read_one,
)
from lc_console.sandbox.salesforce.metadata_soap import (
    SoapFault,
    SoapRequest,
    element,
    elements,
    parse_bool,
    parse_request,
    response,
)
from lc_console.sandbox.salesforce.metadata_xml import MD_NS
from lc_console.sandbox.salesforce.org import Org

TEST_LEVELS = ("NoTestRun", "RunSpecifiedTests", "RunLocalTests", "RunAllTestsInOrg")
UNSUPPORTED = ("createMetadata", "updateMetadata", "upsertMetadata", "deleteMetadata",
               "renameMetadata", "retrieve", "checkRetrieveStatus", "deployRecentValidation",
               "describeValueType", "cancelRetrieve")


class MetadataService:
    """Per-app Metadata API state: the deploy queue and when components last changed."""

    def __init__(self, org: Org):
        self.org = org
        self.deploys = DeployQueue(org)
        self.deploys.on_applied = self._stamp
        self.started = org.clock.now()
        self.stamps: dict[tuple[str, str], tuple[datetime, datetime]] = {}

    def close(self) -> None:
        """Called by SalesforceSandbox.stop()."""
        self.deploys.stop()

    def _stamp(self, messages: list[DeployMessage]) -> None:
        now = self.org.clock.now()
        for m in messages:
            key = (m.component_type, m.full_name.lower())
            if not m.success or not m.changed:
                continue
            if m.deleted:
                self.stamps.pop(key, None)
            else:
                created = now if m.created else self.stamps.get(key, (self.started, now))[0]
                self.stamps[key] = (created, now)


_services_lock = threading.Lock()


def service(app: object) -> MetadataService:
    extensions = app.extensions  # type: ignore[attr-defined]
    with _services_lock:
        svc = extensions.get("metadata")
        if svc is None:
            svc = extensions["metadata"] = MetadataService(app.org)  # type: ignore[attr-defined]
        return svc


def configure(app: object, queue_seconds: float | None = None,
              run_seconds: float | None = None) -> MetadataService:
    """Deploy timing on the org clock (defaults 0.2 s queued, 1 s in progress)."""
    svc = service(app)
    if queue_seconds is not None:
        svc.deploys.queue_seconds = queue_seconds
    if run_seconds is not None:
        svc.deploys.run_seconds = run_seconds
    return svc


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(status, body, [], XML_TYPE)


@route("POST", r"/services/Soap/m/(?P<version>\d+\.\d)(?:/.*)?", auth="soap")
def metadata_endpoint(req: Request) -> Response:
    try:
        request = parse_request(req.body)
        handler = _OPERATIONS.get(request.operation)
        if handler is None:
            if request.operation in UNSUPPORTED:
                raise SoapFault("soapenv:Client",
                                f"The Salesforce sandbox org does not implement {request.operation}; "
                                "use deploy, checkDeployStatus, readMetadata or listMetadata")
            raise SoapFault("soapenv:Client",
                            f"No operation available for request {{{MD_NS}}}{request.operation}, "
                            "please check the WSDL for the service.")
        _check_access(req, request.operation)
        return _xml(handler(req, request))
    except SoapFault as fault:
        return _xml(fault.render(), 500)


def _check_access(req: Request, operation: str) -> None:
    acc = req.access
    assert acc is not None
    if not (acc.has("ModifyAllData") or acc.has("ModifyMetadata")):
        raise ApiError("INSUFFICIENT_ACCESS", "use of the Metadata API requires a user with the "
                                              "ModifyAllData or ModifyMetadata permissions")
    if operation == "deploy" and not acc.has("CustomizeApplication"):
        raise ApiError("INSUFFICIENT_ACCESS", "insufficient access rights: deploying metadata "
                                              "requires the Customize Application permission")


def _user_name(org: Org, user_id: str) -> str:
    try:
        return str(org.user_record(user_id).get("Name") or "")
    except KeyError:
        return ""


# --- deploy --------------------------------------------------------------------------------

def _deploy(req: Request, request: SoapRequest) -> bytes:
    body = request.body
    zip_text = body.findtext("ZipFile") or ""
    try:
        zip_data = base64.b64decode("".join(zip_text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SoapFault("soapenv:Client", "Unable to parse the ZipFile: it is not valid "
                                          "base64Binary") from None
    node = body.find("DeployOptions")
    opts = DeployOptions()
    if node is not None:
        def flag(name: str, default: bool = False) -> bool:
            return parse_bool(node.findtext(name), default)

        opts = DeployOptions(
            check_only=flag("checkOnly"), rollback_on_error=flag("rollbackOnError"),
            ignore_warnings=flag("ignoreWarnings"), purge_on_delete=flag("purgeOnDelete"),
            single_package=flag("singlePackage"), allow_missing_files=flag("allowMissingFiles"),
            auto_update_package=flag("autoUpdatePackage"),
            perform_retrieve=flag("performRetrieve"),
            test_level=(node.findtext("testLevel") or None),
            run_tests=[n.text for n in node.findall("runTests") if n.text],
        )
    if opts.test_level is not None and opts.test_level not in TEST_LEVELS:
        raise SoapFault("soapenv:Client",
                        f"'{opts.test_level}' is not a valid value for the enum 'TestLevel'")
    svc = service(req.app)
    job = svc.deploys.submit(req.user_id, _user_name(req.org, req.user_id), zip_data, opts)
    return response("deploy", "<result>" + elements([
        ("done", False), ("id", job.id), ("state", "Queued")]) + "</result>")


def _message_xml(m: DeployMessage) -> str:
    component_type = "<componentType></componentType>" if m.component_type == "" else \
        element("componentType", m.component_type)
    return (
        element("changed", m.changed) + element("columnNumber", m.column) + component_type
        + element("created", m.created) + element("createdDate", m.created_date)
        + element("deleted", m.deleted) + element("fileName", m.file_name)
        + element("fullName", m.full_name) + element("id", m.id)
        + element("lineNumber", m.line) + element("problem", m.problem)
        + element("problemType", m.problem_type) + element("success", m.success)
    )


def deploy_result_xml(job: DeployJob, now: float, run_seconds: float, include_details: bool) -> str:
    shown, deployed, errors = job.progress(now, run_seconds)
    details = ""
    if include_details:
        failures = [m for m in shown if not m.success]
        successes = [m for m in shown if m.success]
        if job.package_message is not None:
            failures.insert(0, job.package_message)
        elif job.done and job.status != "Canceled":
            successes.append(DeployMessage("", "package.xml", "package.xml", changed=True,
                                           created_date=job.completed))
        details = (
            "".join(f"<componentFailures>{_message_xml(m)}</componentFailures>" for m in failures)
            + "".join(f"<componentSuccesses>{_message_xml(m)}</componentSuccesses>"
                      for m in successes)
            + "<runTestResult><numFailures>0</numFailures><numTestsRun>0</numTestsRun>"
              "<totalTime>0.0</totalTime></runTestResult>"
        )
    started = job.status != "Pending"
    return "<result>" + elements([
        ("canceledBy", job.canceled_by), ("canceledByName", job.canceled_by_name),
        ("checkOnly", job.options.check_only), ("completedDate", job.completed),
        ("createdBy", job.created_by), ("createdByName", job.created_by_name),
        ("createdDate", job.created),
    ]) + f"<details>{details}</details>" + elements([
        ("done", job.done), ("errorMessage", job.error_message),
        ("errorStatusCode", job.error_status_code), ("id", job.id),
        ("ignoreWarnings", job.options.ignore_warnings),
        ("lastModifiedDate", job.last_modified),
        ("numberComponentErrors", errors), ("numberComponentsDeployed", deployed),
        ("numberComponentsTotal", job.total if started else 0),
        ("numberTestErrors", 0), ("numberTestsCompleted", 0), ("numberTestsTotal", 0),
        ("rollbackOnError", job.options.rollback_on_error), ("runTestsEnabled", False),
        ("startDate", job.started), ("stateDetail", job.state_detail),
        ("status", job.status), ("success", job.success),
    ]) + "</result>"


def _job(req: Request, job_id: str) -> DeployJob:
    job = service(req.app).deploys.get(job_id)
    if job is None:
        raise ApiError("INVALID_ID_FIELD", f"Invalid id: {job_id}")
    return job


def _check_deploy_status(req: Request, request: SoapRequest) -> bytes:
    job = _job(req, request.body.findtext("asyncProcessId") or "")
    include = parse_bool(request.body.findtext("includeDetails"), False)
    svc = service(req.app)
    with svc.deploys.lock:
        result = deploy_result_xml(job, req.org.clock.time(), svc.deploys.run_seconds, include)
    return response("checkDeployStatus", result)


def _cancel_deploy(req: Request, request: SoapRequest) -> bytes:
    job_id = request.body.findtext("String") or request.body.findtext("asyncProcessId") or ""
    _job(req, job_id)
    job = service(req.app).deploys.cancel(job_id, req.user_id, _user_name(req.org, req.user_id))
    assert job is not None
    return response("cancelDeploy", "<result>" + elements([("done", job.done), ("id", job.id)])
                    + "</result>")


# --- read / list / describe ----------------------------------------------------------------

def _read_metadata(req: Request, request: SoapRequest) -> bytes:
    type_name = request.body.findtext("type") or ""
    names = [n.text for n in request.body.findall("fullNames")]
    if len(names) > MAX_READ_NAMES:
        raise ApiError("LIMIT_EXCEEDED", f"Too many full names: readMetadata accepts at most "
                                         f"{MAX_READ_NAMES}, got {len(names)}")
    records = []
    with req.org.lock:
        for name in names:
            inner = read_one(req.org, type_name, name)
            records.append(f'<records xsi:type="{type_name}">{inner or ""}</records>')
    return response("readMetadata", "<result>" + "".join(records) + "</result>")


def _list_metadata(req: Request, request: SoapRequest) -> bytes:
    queries = request.body.findall("queries")
    if len(queries) > MAX_LIST_QUERIES:
        raise ApiError("LIMIT_EXCEEDED", f"Too many queries: listMetadata accepts at most "
                                         f"{MAX_LIST_QUERIES}, got {len(queries)}")
    svc = service(req.app)
    admin = req.org.admin_id[:15]
    admin_name = _user_name(req.org, req.org.admin_id)
    results = []
    for query in queries:
        type_name = query.findtext("type") or ""
        for props in list_components(req.org, type_name, svc.stamps, svc.started):
            results.append(f"<result>{props.xml(admin, admin_name)}</result>")
    return response("listMetadata", "".join(results))


def _describe_metadata(req: Request, request: SoapRequest) -> bytes:
    rows = req.org.records("Organization")
    sandbox = bool(rows and rows[0].get("IsSandbox"))
    return response("describeMetadata", describe_metadata_xml(test_required=not sandbox))


_OPERATIONS = {
    "deploy": _deploy,
    "checkDeployStatus": _check_deploy_status,
    "cancelDeploy": _cancel_deploy,
    "readMetadata": _read_metadata,
    "listMetadata": _list_metadata,
    "describeMetadata": _describe_metadata,
}

ROUTES = [metadata_endpoint]
