"""Bulk API 2.0 of the Salesforce sandbox: CSV rules, then the real simple-salesforce client and
raw httpx against a running sandbox."""

from __future__ import annotations

import csv
import io

import pytest

from lc_console.sandbox.salesforce import bulk_csv
from lc_console.sandbox.salesforce.bulk_csv import CsvJobError

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
