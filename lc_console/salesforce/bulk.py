"""Bulk API 2.0 ingest: upsert many records with a handful of API calls.

One job per object and chunk: create (upsert by an external id, or update by Id), upload the
CSV (one PUT: Bulk 2.0 splits it internally), mark UploadComplete, poll the job with a growing
interval, then read failedResults (each row -> Salesforce's `CODE:message:fields`) and
unprocessedrecords (rows a failed or aborted job never reached: the caller writes them again).
Successful rows are not downloaded: every uploaded row that is neither failed nor unprocessed
was written, which saves a call and a download as large as the upload.

Raw HTTP over the simple-salesforce client's own requests session, so tls.ca_bundle and the
token manager's refreshing adapter apply (a 401 INVALID_SESSION_ID is refreshed and sent
again once). simple-salesforce's `sf.bulk2` is not used: it builds CSV columns from a Python
set, cannot stream our chunks under the upload limit, waits at least 5 s per job and does not
give back the unprocessed rows of a failed job.

CSV rules (Bulk 2.0): header = field API names, parents by external id as
`Relationship.ExternalIdField` columns, `#N/A` sets a field to null (an empty cell leaves it
unchanged), dates `YYYY-MM-DD`, datetimes ISO 8601 in UTC, booleans `true`/`false`, numbers
without exponents.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from simple_salesforce import Salesforce

from lc_console.salesforce import writer

NULL = "#N/A"
TERMINAL = ("JobComplete", "Failed", "Aborted")
# 150 MB of base64 per upload is Salesforce's limit; base64 grows 4/3, so stay under 100 MB.
MAX_UPLOAD_BYTES = 100_000_000
MAX_ROWS_PER_JOB = 150_000_000
TIMEOUT = (10.0, 300.0)
RETRIES = 3


# --- CSV ------------------------------------------------------------------------------------


def csv_value(value: Any) -> str:
    """One cell in Bulk 2.0's CSV form."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        text = format(Decimal(str(value)), "f")
        return text
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def flatten(payload: Mapping[str, Any]) -> dict[str, Any]:
    """REST payload -> CSV columns: a parent by external id `{"Account": {"Ext__c": "x"}}`
    becomes the column `Account.Ext__c`."""
    out: dict[str, Any] = {}
    for name, value in payload.items():
        if name == "attributes":
            continue
        if isinstance(value, Mapping):
            for sub, subvalue in value.items():
                if sub != "attributes":
                    out[f"{name}.{sub}"] = subvalue
        else:
            out[name] = value
    return out


def to_csv(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], bytes]:
    """Header and CSV bytes for REST-form payloads. A column a row lacks is left empty (the
    field is not touched); a None is written as #N/A (the field is cleared)."""
    flat = [flatten(r) for r in rows]
    header: list[str] = []
    seen: set[str] = set()
    for row in flat:
        for name in row:
            if name not in seen:
                seen.add(name)
                header.append(name)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(header)
    for row in flat:
        out.writerow([csv_value(row[c]) if c in row else "" for c in header])
    return header, buf.getvalue().encode("utf-8")


def write_csv(out: Any, header: Sequence[str], payloads: Iterable[Mapping[str, Any]]) -> int:
    """Stream REST-form payloads as CSV rows under `header` to a text file; returns rows."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    n = 0
    for payload in payloads:
        flat = flatten(payload)
        w.writerow([csv_value(flat[c]) if c in flat else "" for c in header])
        n += 1
    return n


def chunk_rows(rows: Iterable[Mapping[str, Any]], *, max_bytes: int = MAX_UPLOAD_BYTES,
               max_rows: int = 10_000) -> Iterator[list[Mapping[str, Any]]]:
    """Group rows so that each group's CSV stays under `max_bytes` (estimated per row from its
    JSON size plus the header's share, which is an upper bound of its CSV size)."""
    group: list[Mapping[str, Any]] = []
    size = 0
    for row in rows:
        estimate = len(json.dumps(flatten(row), default=str)) + 2
        if group and (size + estimate > max_bytes or len(group) >= max_rows):
            yield group
            group, size = [], 0
        group.append(row)
        size += estimate
    if group:
        yield group


def parse_error(text: str) -> tuple[str, str, tuple[str, ...]]:
    """`sf__Error` (`CODE:message:fields --`) -> (code, message, fields)."""
    code, _, rest = (text or "").partition(":")
    message, sep, fields = rest.rpartition(":")
    if not sep:
        message, fields = rest, ""
    names = tuple(f.strip() for f in fields.replace("--", "").split(",") if f.strip())
    return (code.strip() or "UNKNOWN_ERROR"), message.strip(), names


# --- jobs -----------------------------------------------------------------------------------


class BulkError(writer.WriteError):
    """A job-level failure (not one row's)."""


@dataclass
class JobOutcome:
    job_id: str
    state: str
    processed: int = 0
    failed_count: int = 0
    error_message: str = ""
    failed: list[dict[str, str]] = field(default_factory=list)  # rows with sf__Error
    unprocessed: list[dict[str, str]] = field(default_factory=list)


class Cancelled(Exception):
    pass


class BulkClient:
    """Bulk API 2.0 ingest over a simple-salesforce client's session. Counts its calls."""

    def __init__(self, sf: Salesforce, *, poll_interval: float = 0.2, max_poll_interval: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep,
                 cancel: threading.Event | None = None) -> None:
        self.sf = sf
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.sleep = sleep
        self.cancel = cancel
        self.calls = 0

    def _url(self, path: str) -> str:
        return f"{self.sf.base_url}jobs/ingest{path}"

    def _request(self, method: str, path: str, *, body: Any = None,
                 content_type: str = "application/json", accept: str = "application/json"
                 ) -> requests.Response:
        # Reads and state changes are asked again on a transient failure (1 s, 2 s, 4 s);
        # creating a job or uploading is not (a retry could create or fill a second job).
        retries = RETRIES if method in ("GET", "PATCH") else 0
        for attempt in range(retries + 1):
            headers = {k: v for k, v in self.sf.headers.items() if k.lower() != "content-type"}
            headers["Content-Type"] = content_type
            headers["Accept"] = accept
            self.calls += 1
            try:
                response = self.sf.session.request(method, self._url(path), data=body,
                                                   headers=headers, timeout=TIMEOUT)
            except requests.RequestException as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection dropped"
                error = BulkError("CONNECTION_ERROR", f"{kind} ({type(exc).__name__})")
            else:
                if response.status_code == 401:
                    raise writer.SessionExpired()
                if response.status_code < 300:
                    return response
                err = writer.error_from_body(response.status_code, response.content)
                error = BulkError(err.code, err.message, err.status, err.body)
            if not error.transient or attempt == retries:
                raise error
            self.sleep(2.0 ** attempt)
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        answer = self._request(method, path, body=data)
        return answer.json() if answer.content else {}

    def create_job(self, sobject: str, operation: str, external_id_field: str | None) -> str:
        body: dict[str, Any] = {"object": sobject, "operation": operation, "contentType": "CSV",
                                "lineEnding": "LF", "columnDelimiter": "COMMA"}
        if operation == "upsert":
            body["externalIdFieldName"] = external_id_field
        info = self._json("POST", "", body)
        return str(info["id"])

    def upload(self, job_id: str, data: bytes | Any) -> None:
        """`data`: the CSV bytes, or a binary file positioned at its start (streamed)."""
        self._request("PUT", f"/{job_id}/batches", body=data,
                      content_type="text/csv; charset=UTF-8")

    def close(self, job_id: str) -> None:
        self._json("PATCH", f"/{job_id}", {"state": "UploadComplete"})

    def abort(self, job_id: str) -> None:
        self._json("PATCH", f"/{job_id}", {"state": "Aborted"})

    def info(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/{job_id}")

    def wait(self, job_id: str, on_poll: Callable[[dict[str, Any]], None] | None = None
             ) -> dict[str, Any]:
        """Poll until the job ends; the interval doubles from poll_interval up to the cap.
        A cancel leaves the job running in Salesforce (it finishes on its own; a resumed
        backfill picks its results up) and raises Cancelled."""
        delay = self.poll_interval
        while True:
            if self.cancel is not None and self.cancel.wait(delay):
                raise Cancelled()
            if self.cancel is None:
                self.sleep(delay)
            info = self.info(job_id)
            if on_poll is not None:
                on_poll(info)
            if info.get("state") in TERMINAL:
                return info
            delay = min(self.max_poll_interval, delay * 2)

    def _csv_rows(self, job_id: str, kind: str) -> list[dict[str, str]]:
        answer = self._request("GET", f"/{job_id}/{kind}", accept="text/csv")
        text = answer.content.decode("utf-8")
        if not text.strip():
            return []
        return list(csv.DictReader(io.StringIO(text)))

    def failed_results(self, job_id: str) -> list[dict[str, str]]:
        return self._csv_rows(job_id, "failedResults")

    def unprocessed_records(self, job_id: str) -> list[dict[str, str]]:
        return self._csv_rows(job_id, "unprocessedrecords")

    def outcome(self, job_id: str, info: dict[str, Any]) -> JobOutcome:
        """Read what a finished job left: failed rows when any failed, unprocessed rows when
        the job did not complete."""
        state = str(info.get("state"))
        out = JobOutcome(job_id, state, int(info.get("numberRecordsProcessed") or 0),
                         int(info.get("numberRecordsFailed") or 0),
                         str(info.get("errorMessage") or ""))
        if out.failed_count:
            out.failed = self.failed_results(job_id)
        if state != "JobComplete":
            out.unprocessed = self.unprocessed_records(job_id)
        return out
