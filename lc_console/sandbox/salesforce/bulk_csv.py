"""CSV as Bulk API 2.0 reads and writes it.

Upload rules: the header row holds field API names (or ``Relationship.ExternalIdField``);
the job's ``columnDelimiter`` and ``lineEnding`` apply; an empty cell leaves the field
unchanged and ``#N/A`` sets it to null; a row whose line ending differs from the job's setting
makes the whole job fail, as on a real org. Result files quote every value and echo the
original columns after the ``sf__`` ones.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

DELIMITERS = {
    "BACKQUOTE": "`",
    "CARET": "^",
    "COMMA": ",",
    "PIPE": "|",
    "SEMICOLON": ";",
    "TAB": "\t",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
NULL_MARKER = "#N/A"

# Bulk API 2.0 limits: 150 MB of base64-encoded content per upload (Salesforce converts the
# upload to base64, so about 100 MB of raw CSV is the advice to clients); 32,000 characters
# per field; 5,000 fields and 400,000 characters per record.
MAX_UPLOAD_BASE64_BYTES = 150 * 1024 * 1024
MAX_FIELD_CHARS = 32_000
MAX_FIELDS_PER_RECORD = 5_000
MAX_RECORD_CHARS = 400_000


class CsvJobError(ValueError):
    """A problem with the uploaded data that makes the whole job fail (``errorMessage``)."""


@dataclass
class ParsedCsv:
    header: list[str]
    rows: list[list[str]]
    header_text: list[str]  # the header cells as uploaded, echoed in result files


def parse_upload(data: bytes, column_delimiter: str = "COMMA", line_ending: str = "LF") -> ParsedCsv:
    """Parse an uploaded CSV; raise CsvJobError with Salesforce's job-level wording."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CsvJobError("InvalidBatch : Failed to parse CSV. Found invalid UTF-8 data") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise CsvJobError("InvalidBatch : Failed to parse CSV header")
    if line_ending == "LF" and "\r\n" in text:
        raise CsvJobError(
            "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF")
    if line_ending == "CRLF" and _has_bare_lf(text):
        raise CsvJobError(
            "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is CRLF")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[column_delimiter],
                        strict=True)
    try:
        rows = [row for row in reader if row != []]
    except csv.Error as exc:
        raise CsvJobError(f"InvalidBatch : Failed to parse CSV. {exc}") from None
    header_text = rows[0]
    header = [cell.strip() for cell in header_text]
    if any(not name for name in header):
        raise CsvJobError("InvalidBatch : Field name not found : ")
    seen: set[str] = set()
    for name in header:
        if name.lower() in seen:
            raise CsvJobError(f"InvalidBatch : Duplicate field name : {name}")
        seen.add(name.lower())
    if len(header) > MAX_FIELDS_PER_RECORD:
        raise CsvJobError(f"InvalidBatch : Too many fields in header: {len(header)} (max "
                          f"{MAX_FIELDS_PER_RECORD})")
    return ParsedCsv(header=header, rows=rows[1:], header_text=header_text)


def _has_bare_lf(text: str) -> bool:
    # A newline inside a quoted value is data, not a line ending: only look outside quotes.
    in_quotes = False
    prev = ""
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == "\n" and not in_quotes and prev != "\r":
            return True
        prev = ch
    return False


def base64_size(raw_bytes: int) -> int:
    """Size of ``raw_bytes`` of CSV once base64-encoded, which is what the limit counts."""
    return 4 * ((raw_bytes + 2) // 3)


def row_problem(row: list[str], header: list[str]) -> str | None:
    """Record-level limit violations, as ``sf__Error`` text, or None."""
    if len(row) > len(header):
        return "INVALID_FIELD:Too many columns in row:--"
    total = 0
    for name, cell in zip(header, row, strict=False):
        if len(cell) > MAX_FIELD_CHARS:
            return (f"STRING_TOO_LONG:{name}: data value too large: "
                    f"{cell[:20]}... (max length={MAX_FIELD_CHARS}):{name} --")
        total += len(cell)
    if total > MAX_RECORD_CHARS:
        return f"INVALID_FIELD:Record exceeds {MAX_RECORD_CHARS} characters:--"
    return None


def row_values(row: list[str], header: list[str]) -> dict[str, str | None]:
    """Cells to apply: empty cells are left out (unchanged), ``#N/A`` becomes None (null)."""
    values: dict[str, str | None] = {}
    for name, cell in zip(header, row, strict=False):
        if cell == "":
            continue
        values[name] = None if cell == NULL_MARKER else cell
    return values


def write_results(prefix_columns: list[str], header_text: list[str], rows: list[list[str]],
                  column_delimiter: str = "COMMA", line_ending: str = "LF") -> bytes:
    """A result file: ``sf__`` columns then the original ones, every value quoted."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=DELIMITERS[column_delimiter],
                        lineterminator=LINE_ENDINGS[line_ending], quoting=csv.QUOTE_ALL)
    writer.writerow(prefix_columns + header_text)
    width = len(header_text)
    for row in rows:
        writer.writerow(row[: len(prefix_columns) + width])
    return out.getvalue().encode("utf-8")


def error_text(code: str, message: str, fields: list[str] | None = None) -> str:
    """``sf__Error`` as Salesforce writes it: ``CODE:message:Field1,Field2 --``."""
    return f"{code}:{message}:{','.join(fields or [])} --"
