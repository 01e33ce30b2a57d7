"""Logging to a rotating file under platformdirs.user_log_dir, with secrets redacted.

The redaction filter sits on the handler, so it also sees records from libraries (httpx,
simple-salesforce, stripe) that propagate to the root logger. It rewrites the message, its
arguments and any traceback before anything is formatted or written.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import threading
import traceback
from pathlib import Path
from urllib.parse import quote

from lc_console import paths

LOG_LEVEL_ENV = "LC_CONSOLE_LOG_LEVEL"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 5
FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"
MASK = "[REDACTED]"

# Names whose value is a secret wherever they appear as key=value, key: value or "key": "value".
_SECRET_NAMES = (
    r"refresh_token|access_token|id_token|client_secret|code_verifier|api_key|apikey|"
    r"secret|password|passwd|session_?id|sid|private_key|stripe_api_key|token|x-sfdc-session"
)
_RULES: list[tuple[re.Pattern[str], str]] = [
    # Authorization / Proxy-Authorization headers: text, dict repr and JSON forms.
    (re.compile(r"(?i)((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
                r"((?:bearer|basic|digest|oauth|token)\s+)?[^\s\"',}]+"),
     r"\1\2" + MASK),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=!-]+"), r"\1" + MASK),
    # key=value (form bodies, query strings) and "key": "value" / 'key': 'value'.
    (re.compile(rf"(?i)([\"']?\b(?:{_SECRET_NAMES})\b[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}}]+"),
     r"\1" + MASK),
    # The OAuth authorization code in a callback URL or token request body.
    (re.compile(r"(?i)((?:^|[?&\s])code=)[^\s&\"']+"), r"\1" + MASK),
    # Stripe keys: secret, restricted, publishable; webhook signing secrets.
    (re.compile(r"\b((?:sk|rk|pk)_(?:live|test)_)[A-Za-z0-9]+"), r"\1" + MASK),
    (re.compile(r"\b(whsec_)[A-Za-z0-9]+"), r"\1" + MASK),
    # Salesforce access tokens / session ids: <15- or 18-char org id>!<secret part>.
    (re.compile(r"\b(00D[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?(?:!|%21))[A-Za-z0-9._]+"),
     r"\1" + MASK),
    # JWTs (id tokens, JWT-bearer assertions).
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), MASK),
]


# Secret values this process has handled (secrets.py registers what it reads and writes), so
# that an opaque token with no telltale shape or key name is masked too.
_known: set[str] = set()
_known_lock = threading.Lock()


def remember_secret(value: str) -> None:
    if len(value) < 8:  # too short to mask without mangling ordinary text
        return
    with _known_lock:
        _known.update({value, quote(value, safe="")})


def redact(text: str) -> str:
    """Mask tokens, API keys and credentials in free text."""
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Redacts the message, its args and any exception text of every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Rotating file handler whose files are created owner-only (they name customers)."""

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)


def _level() -> int:
    name = os.environ.get(LOG_LEVEL_ENV, "INFO").upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


def setup_logging(log_file: Path | None = None) -> Path | None:
    """Send the root logger to the rotating, redacted log file. Safe to call again (the CLI
    calls it on every run; tests move the log dir): the previous handler is replaced.
    Returns the log file, or None when it cannot be written (logging then stays off)."""
    path = log_file or paths.log_file()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, PrivateRotatingFileHandler):
            root.removeHandler(handler)
            handler.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = PrivateRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT,
                                             encoding="utf-8")
    except OSError:
        return None
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(_level())
    return path
