"""Bulk API 2.0 ingest routes (/services/data/vNN.N/jobs/ingest...).

Every request is one API call (REST auth, counted by the server, with Sforce-Limit-Info).
Errors use the REST error array. Paths: create / list jobs, job info, PATCH state
(UploadComplete, Aborted), DELETE, PUT .../batches (201, empty body), and the result files
successfulResults / failedResults / unprocessedrecords (any letter case, trailing slash
optional). Query jobs are not implemented.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from lc_console.sandbox.salesforce import bulk_csv, ids
from lc_console.sandbox.salesforce.bulk_jobs import OPERATIONS, BulkJobs, IngestJob
from lc_console.sandbox.salesforce.errors import ApiError
from lc_console.sandbox.salesforce.http import (
    DATA,
    Request,
    Response,
    empty_response,
    json_response,
    route,
)

MIN_VERSION = 41.0  # Bulk API 2.0 ingest exists from v41.0
JOB = DATA + r"/jobs/ingest/(?P<job>[A-Za-z0-9]{15,18})"
CSV_CONTENT_TYPE = "text/csv"

_lock = threading.Lock()


class BulkService:
    def __init__(self, org: Any):
        self.jobs = BulkJobs(org)
        # base64 size limit of one upload; tests lower it to exercise the refusal
        self.max_upload_base64_bytes = bulk_csv.MAX_UPLOAD_BASE64_BYTES

    def close(self) -> None:
        """Called by SalesforceSandbox.stop()."""
        self.jobs.stop()


def service(app: Any) -> BulkService:
    with _lock:
        svc = app.extensions.get("bulk")
        if svc is None:
            svc = app.extensions["bulk"] = BulkService(app.org)
        return svc


def _version(req: Request) -> float:
    version = float(req.params["version"])
    if version < MIN_VERSION:
        raise ApiError("NOT_FOUND", "The requested resource does not exist", status=404)
    return version


def _job(req: Request) -> IngestJob:
    _version(req)
    job = service(req.app).jobs.get(req.params["job"])
    if job is None:
        raise ApiError("NOT_FOUND", "The requested resource does not exist", status=404)
    return job


def _enum_error(value: Any, name: str, allowed: tuple[str, ...]) -> ApiError:
    return ApiError("JSON_PARSER_ERROR",
                    f"Cannot deserialize value of type `{name}` from String \"{value}\": not one "
                    f"of the values accepted for Enum class: [{', '.join(allowed)}]")


@route("POST", JOB.rsplit("/", 1)[0] + "/?")
def create_job(req: Request) -> Response:
    version = _version(req)
    body = req.json()
    if not isinstance(body, dict):
        raise ApiError("JSON_PARSER_ERROR", "The request body must be a JSON object")
    operation = body.get("operation")
    if operation not in OPERATIONS:
        if not operation:
            raise ApiError("INVALIDJOB", "InvalidJob : Required field is missing: operation")
        raise _enum_error(operation, "OperationEnum", OPERATIONS)
    object_name = body.get("object")
    if not object_name:
        raise ApiError("INVALIDJOB", "InvalidJob : Required field is missing: object")
    content_type = body.get("contentType", "CSV")
    if content_type != "CSV":
        raise _enum_error(content_type, "ContentTypeEnum", ("CSV",))
    delimiter = body.get("columnDelimiter", "COMMA")
    if delimiter not in bulk_csv.DELIMITERS:
        raise _enum_error(delimiter, "ColumnDelimiterEnum", tuple(bulk_csv.DELIMITERS))
    line_ending = body.get("lineEnding", "LF")
    if line_ending not in bulk_csv.LINE_ENDINGS:
        raise _enum_error(line_ending, "LineEndingEnum", tuple(bulk_csv.LINE_ENDINGS))
    org = req.org
    acc = req.access
    assert acc is not None
    obj = org.schema.get(str(object_name))
    if obj is None or (not org.can_object(acc, obj, "read") and not obj.platform_event):
        raise ApiError("INVALIDENTITY", f"InvalidEntity : sObject type '{object_name}' is not "
                                        "supported.")
    if obj.platform_event or obj.setup and obj.name != "PermissionSetAssignment":
        raise ApiError("INVALIDENTITY", f"InvalidEntity : Entity '{obj.name}' is not supported "
                                        "by the Bulk API.")
    external_id = body.get("externalIdFieldName")
    if operation == "upsert":
        if not external_id:
            raise ApiError("INVALIDJOB", f"InvalidJob : External ID was blank for {obj.name}. An "
                                         "External ID must be specified for upsert.")
        f = obj.field(str(external_id))
        if (f is None or not org.field_visible(acc, obj, f)
                or not (f.external_id or f.type == "id" or (f.id_lookup and f.unique))):
            raise ApiError("INVALIDJOB", f"InvalidJob : Field name provided, {external_id} does "
                                         "not match an External ID, Salesforce Id, or indexed "
                                         f"field for {obj.name}")
        external_id = f.name
    else:
        external_id = None
    if operation == "hardDelete" and not acc.has("ModifyAllData"):
        raise ApiError("INVALIDJOB", "InvalidJob : hardDelete requires the Bulk API Hard Delete "
                                     "permission")
    now = org.clock.now()
    job = IngestJob(id=ids.new_id("750"), object=obj.name, operation=str(operation),
                    created_by=req.user_id, created=now, modified=now, api_version=version,
                    external_id_field=external_id, column_delimiter=delimiter,
                    line_ending=line_ending,
                    assignment_rule_id=body.get("assignmentRuleId"))
    service(req.app).jobs.add(job)
    return json_response(job.summary())


@route("GET", JOB.rsplit("/", 1)[0] + "/?")
def list_jobs(req: Request) -> Response:
    _version(req)
    job_type = req.arg("jobType")
    svc = service(req.app)
    with svc.jobs.lock:
        jobs = sorted(svc.jobs.jobs.values(), key=lambda j: j.created)
        records = []
        for job in jobs:
            if job_type not in (None, "", "V2Ingest"):
                continue
            summary = job.summary()
            summary.pop("contentUrl")
            summary["jobType"] = "V2Ingest"
            records.append(summary)
    return json_response({"done": True, "records": records, "nextRecordsUrl": None})


@route("GET", JOB + "/?")
def job_info(req: Request) -> Response:
    job = _job(req)
    with service(req.app).jobs.lock:
        return json_response(job.info())


@route("PATCH", JOB + "/?")
def change_state(req: Request) -> Response:
    job = _job(req)
    body = req.json()
    state = body.get("state") if isinstance(body, dict) else None
    svc = service(req.app)
    with svc.jobs.lock:
        if state == "UploadComplete":
            if job.state != "Open":
                raise ApiError("INVALIDJOBSTATE", f"Job {job.id} is not in the Open state "
                                                  f"(state: {job.state}); it can't be closed")
            svc.jobs.close_upload(job)
        elif state == "Aborted":
            if job.state in ("JobComplete", "Failed", "Aborted"):
                done = {"JobComplete": "Completed"}.get(job.state, job.state)
                raise ApiError("INVALIDJOBSTATE", f"Aborting already {done} Job not allowed")
            svc.jobs.abort(job)
        else:
            raise ApiError("INVALIDJOBSTATE", f"Invalid state {state!r}: a job's state can be "
                                              "set to UploadComplete or Aborted")
        return json_response(job.summary())


@route("DELETE", JOB + "/?")
def delete_job(req: Request) -> Response:
    job = _job(req)
    svc = service(req.app)
    with svc.jobs.lock:
        if job.state in ("Open", "InProgress"):
            raise ApiError("INVALIDJOBSTATE", f"Deleting a job in the {job.state} state is not "
                                              "allowed: close or abort it first")
        svc.jobs.remove(job.id)
    return empty_response(204)


@route("PUT", JOB + "/batches/?")
def upload(req: Request) -> Response:
    job = _job(req)
    if req.content_type != CSV_CONTENT_TYPE:
        raise ApiError("INVALIDCONTENTTYPE", f"Content-Type {req.content_type or '(none)'} is "
                                             "not supported for job data: use text/csv")
    svc = service(req.app)
    if bulk_csv.base64_size(len(req.body)) > svc.max_upload_base64_bytes:
        raise ApiError("CLIENTINPUTERROR", "ClientInputError : Failed to read request. Exceeded "
                                           f"max size limit of {svc.max_upload_base64_bytes} "
                                           "bytes of base64-encoded data", status=400)
    with svc.jobs.lock:
        if job.state != "Open":
            raise ApiError("INVALIDJOBSTATE", f"Job {job.id} is not in the Open state (state: "
                                              f"{job.state}); data can't be uploaded")
        if job.data is not None:
            raise ApiError("INVALIDJOBSTATE", f"Data was already uploaded for job {job.id}; a "
                                              "job takes one upload")
        if not req.body:
            raise ApiError("CLIENTINPUTERROR", "ClientInputError : No content to upload")
        job.data = req.body
        job.modified = req.org.clock.now()
    return Response(201, b"", [], None)


@route("GET", JOB + r"/(?P<kind>successfulResults|failedResults|unprocessedrecords)/?",
       flags=re.IGNORECASE)
def results(req: Request) -> Response:
    job = _job(req)
    kind = req.params["kind"].lower()
    with service(req.app).jobs.lock:
        if kind == "successfulresults":
            body = job.successful_csv()
        elif kind == "failedresults":
            body = job.failed_csv()
        else:
            body = job.unprocessed_csv()
    return Response(200, body, [], "text/csv")


ROUTES = [create_job, list_jobs, job_info, change_state, delete_job, upload, results]
