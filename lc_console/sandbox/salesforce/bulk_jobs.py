"""Bulk API 2.0 ingest jobs: their states, their processing and their result files.

    Open --PUT batches, PATCH UploadComplete--> UploadComplete --queue--> InProgress
         --> JobComplete | Failed          (PATCH Aborted from Open / UploadComplete / InProgress)

Rows go through `Org.save_many` in chunks, so validation and error codes are exactly those of
REST. What is Bulk's own: the CSV rules (bulk_csv), a job-level failure for a bad upload or an
unknown column (``InvalidBatch : Field name not found : X``), the ``sf__Error`` text
``CODE:message:fields --`` and deserialization errors worded as Bulk words them
(``Failed to deserialize field at col N. Due to, 'x' is not a valid value for the type
xsd:date``). A worker thread per org processes jobs; time is the org clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lc_console.sandbox.salesforce import bulk_csv, ids
from lc_console.sandbox.salesforce import values as vals
from lc_console.sandbox.salesforce.bulk_csv import CsvJobError, ParsedCsv
from lc_console.sandbox.salesforce.errors import ApiError, SaveResult

if TYPE_CHECKING:
    from lc_console.sandbox.salesforce.org import Access, Org
    from lc_console.sandbox.salesforce.schema import FieldDef

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
TERMINAL = ("JobComplete", "Failed", "Aborted")
DEFAULT_QUEUE_SECONDS = 0.1  # UploadComplete -> InProgress
CHUNK_ROWS = 200  # rows per save_many call (one transaction each)
TICK_SECONDS = 0.02

_XSD_TYPES = {"boolean": "xsd:boolean", "int": "xsd:int", "double": "xsd:double",
              "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date",
              "datetime": "xsd:dateTime"}


def salesforce_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


@dataclass
class IngestJob:
    id: str
    object: str
    operation: str
    created_by: str
    created: datetime
    api_version: float
    external_id_field: str | None = None
    column_delimiter: str = "COMMA"
    line_ending: str = "LF"
    assignment_rule_id: str | None = None
    state: str = "Open"
    modified: datetime | None = None
    data: bytes | None = None
    upload_complete_at: float = 0.0
    started_ms: float = 0.0
    processing_ms: int = 0
    error_message: str | None = None
    parsed: ParsedCsv | None = None
    next_row: int = 0  # rows before this index have been processed
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    abort_requested: bool = False

    @property
    def content_url(self) -> str:
        return f"services/data/v{self.api_version:.1f}/jobs/ingest/{self.id}/batches"

    def summary(self) -> dict[str, Any]:
        """Job info as created / listed / after a state change."""
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": salesforce_datetime(self.created),
            "systemModstamp": salesforce_datetime(self.modified or self.created),
            "state": self.state,
        }
        if self.external_id_field:
            out["externalIdFieldName"] = self.external_id_field
        if self.assignment_rule_id:
            out["assignmentRuleId"] = self.assignment_rule_id
        out.update({
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": self.api_version,
            "contentUrl": self.content_url,
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        })
        return out

    def info(self) -> dict[str, Any]:
        """GET /jobs/ingest/{id}: the summary plus the processing counters."""
        out = self.summary()
        out.pop("contentUrl")
        out["jobType"] = "V2Ingest"
        out["contentUrl"] = self.content_url
        out.update({
            "retries": 0,
            "numberRecordsProcessed": len(self.successes) + len(self.failures),
            "numberRecordsFailed": len(self.failures),
            "totalProcessingTime": self.processing_ms,
            "apiActiveProcessingTime": self.processing_ms,
            "apexProcessingTime": 0,
        })
        if self.error_message:
            out["errorMessage"] = self.error_message
        return out

    # -- result files -----------------------------------------------------------------------
    def _header(self) -> list[str]:
        if self.parsed is not None:
            return self.parsed.header_text
        if self.data:
            try:
                return bulk_csv.parse_upload(self.data, self.column_delimiter,
                                             self.line_ending).header_text
            except CsvJobError:
                return []
        return []

    def successful_csv(self) -> bytes:
        return bulk_csv.write_results(["sf__Id", "sf__Created"], self._header(), self.successes,
                                      self.column_delimiter, self.line_ending)

    def failed_csv(self) -> bytes:
        return bulk_csv.write_results(["sf__Id", "sf__Error"], self._header(), self.failures,
                                      self.column_delimiter, self.line_ending)

    def unprocessed_csv(self) -> bytes:
        rows: list[list[str]] = []
        if self.state != "JobComplete":
            if self.parsed is not None:
                rows = self.parsed.rows[self.next_row:]
            elif self.data:
                try:
                    rows = bulk_csv.parse_upload(self.data, self.column_delimiter,
                                                 self.line_ending).rows
                except CsvJobError:
                    rows = []
        return bulk_csv.write_results([], self._header(), rows, self.column_delimiter,
                                      self.line_ending)


class BulkJobs:
    """The ingest jobs of one org, and the worker thread that runs them."""

    def __init__(self, org: Org, queue_seconds: float = DEFAULT_QUEUE_SECONDS):
        self.org = org
        self.queue_seconds = queue_seconds
        self.jobs: dict[str, IngestJob] = {}
        self.lock = threading.RLock()
        self._worker: threading.Thread | None = None
        self._stopped = threading.Event()

    def add(self, job: IngestJob) -> None:
        with self.lock:
            self.jobs[job.id] = job

    def get(self, job_id: str) -> IngestJob | None:
        rid = ids.try_normalize(job_id)
        with self.lock:
            return self.jobs.get(rid) if rid else None

    def remove(self, job_id: str) -> None:
        with self.lock:
            self.jobs.pop(job_id, None)

    def close_upload(self, job: IngestJob) -> None:
        with self.lock:
            job.state = "UploadComplete"
            job.modified = self.org.clock.now()
            job.upload_complete_at = self.org.clock.time()
            if self._worker is None or not self._worker.is_alive():
                if not self._stopped.is_set():
                    self._worker = threading.Thread(target=self._run, name="sf-sandbox-bulk",
                                                    daemon=True)
                    self._worker.start()

    def abort(self, job: IngestJob) -> None:
        with self.lock:
            if job.state == "InProgress":
                job.abort_requested = True  # the worker stops after the current chunk
            job.state = "Aborted"
            job.modified = self.org.clock.now()

    def stop(self) -> None:
        self._stopped.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=5)

    # -- processing -------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopped.wait(TICK_SECONDS):
            with self.lock:
                now = self.org.clock.time()
                due = [j for j in self.jobs.values() if j.state == "UploadComplete"
                       and now >= j.upload_complete_at + self.queue_seconds]
                waiting = any(j.state == "UploadComplete" for j in self.jobs.values())
                if not due and not waiting:
                    self._worker = None
                    return
            for job in sorted(due, key=lambda j: j.upload_complete_at):
                self.process(job)

    def process(self, job: IngestJob) -> None:
        """Run one job to its end (called by the worker; tests may call it directly)."""
        with self.lock:
            if job.state != "UploadComplete":
                return
            job.state = "InProgress"
            job.modified = self.org.clock.now()
        started = time.perf_counter()
        try:
            self._process_rows(job, started)
        except CsvJobError as exc:
            with self.lock:
                job.error_message = str(exc)
                job.state = "Failed"
        finally:
            with self.lock:
                job.processing_ms = int((time.perf_counter() - started) * 1000)
                job.modified = self.org.clock.now()
                if job.state == "InProgress":
                    job.state = "JobComplete"

    def _process_rows(self, job: IngestJob, started: float) -> None:
        if not job.data:
            raise CsvJobError("InvalidBatch : No data was uploaded for this job")
        parsed = bulk_csv.parse_upload(job.data, job.column_delimiter, job.line_ending)
        job.parsed = parsed
        acc = self.org.access(job.created_by)
        columns = self._columns(job, parsed, acc)
        while job.next_row < len(parsed.rows):
            if job.abort_requested:
                return
            chunk = parsed.rows[job.next_row: job.next_row + CHUNK_ROWS]
            self._process_chunk(job, parsed, chunk, columns, acc)
            with self.lock:
                job.next_row += len(chunk)
                job.processing_ms = int((time.perf_counter() - started) * 1000)

    def _columns(self, job: IngestJob, parsed: ParsedCsv, acc: Access) -> list[Column]:
        """Check the header against the object: one Column per header cell."""
        obj = self.org.schema.get(job.object)
        if obj is None:
            raise CsvJobError(f"InvalidBatch : sObject type '{job.object}' is not supported")
        out: list[Any] = []
        for name in parsed.header:
            if job.operation in ("delete", "hardDelete") and name.lower() != "id":
                raise CsvJobError(f"InvalidBatch : The '{job.operation}' batch must contain "
                                  f"only 'Id', found {name}")
            relation, dot, ext_name = name.partition(".")
            if dot:
                ref = obj.field_by_relationship(relation)
                target = self.org.schema.get(ref.reference_to[0]) if ref is not None else None
                ext = target.field(ext_name) if target is not None else None
                if (ref is None or target is None or ext is None
                        or not self.org.field_visible(acc, obj, ref)
                        or not self.org.field_visible(acc, target, ext)):
                    raise CsvJobError(f"InvalidBatch : Field name not found : {name}")
                out.append(Column(name, None, ref.name))  # type: ignore[union-attr]
                continue
            f = obj.field(name)
            if f is None or not self.org.field_visible(acc, obj, f):
                raise CsvJobError(f"InvalidBatch : Field name not found : {name}")
            out.append(Column(name, f, None))
        return out

    def _process_chunk(self, job: IngestJob, parsed: ParsedCsv, chunk: list[list[str]],
                       columns: list[Column], acc: Access) -> None:
        records: list[dict[str, Any]] = []
        positions: list[int] = []
        early: dict[int, str] = {}
        for i, row in enumerate(chunk):
            problem = bulk_csv.row_problem(row, parsed.header) or \
                _deserialize_problem(row, parsed.header, columns)
            if problem:
                early[i] = problem
                continue
            records.append(_record(row, columns))
            positions.append(i)
        operation = "delete" if job.operation == "hardDelete" else job.operation
        results: list[SaveResult] = []
        if records:
            try:
                results = self.org.save_many(operation, job.object, records, acc,
                                             external_id_field=job.external_id_field)
            except ApiError as exc:  # request-level refusal (object or field access)
                results = [SaveResult.failed(exc) for _ in records]
        by_position = dict(zip(positions, results, strict=True))
        with self.lock:
            for i, row in enumerate(chunk):
                padded = row + [""] * (len(parsed.header) - len(row))
                given_id = _given_id(row, parsed.header)
                if i in early:
                    job.failures.append([given_id, early[i], *padded])
                    continue
                res = by_position[i]
                if res.success:
                    created = bool(res.created) if operation == "upsert" else operation == "insert"
                    job.successes.append([res.id or given_id, "true" if created else "false",
                                          *padded])
                else:
                    error = res.errors[0] if res.errors else ApiError("UNKNOWN_EXCEPTION",
                                                                      "unknown error")
                    failed_id = given_id if operation in ("update", "delete") else ""
                    job.failures.append([failed_id, error.bulk(), *padded])


def _given_id(row: list[str], header: list[str]) -> str:
    for name, cell in zip(header, row, strict=False):
        if name.lower() == "id":
            return cell
    return ""


@dataclass(frozen=True)
class Column:
    name: str  # as in the header
    field: FieldDef | None  # the field a plain column writes
    reference: str | None  # for `Relationship.ExtId` columns: the lookup field they set


def _record(row: list[str], columns: list[Column]) -> dict[str, Any]:
    """CSV cells -> a save_many record: empty cells are left out (unchanged), #N/A is null,
    `Rel.ExtField` becomes {"Rel": {"ExtField": value}} (null clears the lookup)."""
    values = bulk_csv.row_values(row, [c.name for c in columns])
    record: dict[str, Any] = {}
    for column in columns:
        if column.name not in values:
            continue
        value = values[column.name]
        if column.reference is None:
            record[column.name] = value
        elif value is None:
            record[column.reference] = None
        else:
            relation, _, ext = column.name.partition(".")
            record[relation] = {ext: value}
    return record


def _deserialize_problem(row: list[str], header: list[str], columns: list[Column]) -> str | None:
    for col, (name, cell, column) in enumerate(zip(header, row, columns, strict=False), start=1):
        f = column.field
        if f is None or cell in ("", bulk_csv.NULL_MARKER) or f.type not in _XSD_TYPES:
            continue
        try:
            vals.coerce(f, cell)
        except vals.FieldValueError as exc:
            if exc.code != "INVALID_TYPE_ON_FIELD_IN_RECORD":
                continue  # range / length problems: the org reports them like REST does
            return bulk_csv.error_text(
                "INVALID_FIELD", f"Failed to deserialize field at col {col}. Due to, '{cell}' "
                f"is not a valid value for the type {_XSD_TYPES[f.type]}", [name])
    return None
