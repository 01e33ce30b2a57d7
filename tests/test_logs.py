"""The log file: where it lives, that it rotates privately, and that secrets never reach it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from lc_console import paths, secrets
from lc_console.cli import main
from lc_console.logs import PrivateRotatingFileHandler, redact, setup_logging

# Real-looking values, shaped as Stripe and Salesforce issue them.
STRIPE_SECRET = ("sk_" "live_51HqLyjWDarjtT1zdp7dcXYZ0SGYgHxFqmwDHWtSEB7h2PvmjvyvnPMtRRzExBdUc"
                 "hoThGuyLBKzlmJtvEm4r8hJ4u00CTDAk8KK")
STRIPE_TEST_SECRET = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_RESTRICTED = "rk_" "live_51HqLyjWDarjtT1zdBx9Tq0RsDf3YxHhGbYq8PpQeWmZ2u00AbCdEfGh"
STRIPE_PUBLISHABLE = "pk_test_TYooMQauvdEDq54NiTphI7jx"
STRIPE_WEBHOOK = "whsec_5f8a3c2b1d9e7f6a4b3c2d1e0f9a8b7c"
SF_ACCESS = ("00D5g000004XyZ1!" "AQ0AQH7f8kR2mPqN3vW.xYzT9bLc4dE5fG6hJ7kL8mN9pQ0rS1tU2vW3xY4zA"
             "5bC6dE7fG8hJ9kL0mN1pQ2rS3tU_4vW5x")
SF_REFRESH = ("5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJo7Xrg2mq.Hzl8Bp0vbdnHM4KtsMZsHnVcbfwNxXXj"
              "QK3TnOAk")
SF_CLIENT_SECRET = "8F1E6B6C0D2A4E5F9A7B3C1D0E2F4A6B8C9D0E1F2A3B4C5D6E7F8A9B0C1D2E3F"
PKCE_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
AUTH_CODE = "aPrxYXyxzkuBzbiJq3NEbSPKA5mCTQjW2F0r_KfJhXq1"
BASIC = "bHVjeUBleGFtcGxlLmNvbTpodW50ZXIy"
JWT = ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMDVYWDAwMDAwMUIyM0MiLCJpc3MiOiJo"
       "dHRwczovL2xvZ2luLnNhbGVzZm9yY2UuY29tIn0.Qm9ndXNTaWduYXR1cmVWYWx1ZUZvclRlc3RzT25seQ")
PASSWORD = "hunter2-Correct-Horse"

ALL_SECRETS = [STRIPE_SECRET, STRIPE_TEST_SECRET, STRIPE_RESTRICTED, STRIPE_PUBLISHABLE,
               STRIPE_WEBHOOK, SF_ACCESS, SF_REFRESH, SF_CLIENT_SECRET, PKCE_VERIFIER,
               AUTH_CODE, BASIC, JWT, PASSWORD]


def _secret_parts(value: str) -> list[str]:
    """The parts of a secret that must never appear (prefixes like sk_live_ may stay)."""
    for prefix in ("sk_" "live_", "sk_test_", "rk_" "live_", "pk_test_", "whsec_"):
        if value.startswith(prefix):
            return [value[len(prefix):]]
    if "!" in value:  # Salesforce token: the org id before "!" is not a secret
        return [value.split("!", 1)[1]]
    return [value]


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def test_secrets_never_reach_the_log_file_on_disk(isolated_dirs: Path) -> None:
    # The refresh token went through the keyring, as in the product: from then on it is masked
    # even where nothing about the text says it is a token (the exception below).
    secrets.put("default", secrets.SecretKind.SALESFORCE_REFRESH_TOKEN, SF_REFRESH)
    path = setup_logging()
    assert path == paths.log_file()
    assert str(path).startswith(str(isolated_dirs / "state"))  # XDG_STATE_HOME on Linux

    log = logging.getLogger("lc_console.salesforce.auth")
    lib = logging.getLogger("httpx")  # a library logger: the filter is on the handler
    log.info("token request body: grant_type=refresh_token&client_id=3MVG9lKcPoNINVBJSoQsNCD."
             "HHDdbugPsNXwwyFbgb47KWa_PTv&client_secret=%s&refresh_token=%s",
             SF_CLIENT_SECRET, SF_REFRESH)
    log.info('token response: {"access_token":"%s","refresh_token":"%s",'
             '"instance_url":"https://acme.my.salesforce.com","id_token":"%s"}',
             SF_ACCESS, SF_REFRESH, JWT)
    log.info("authorize: code_verifier=%s code_challenge_method=S256", PKCE_VERIFIER)
    lib.info("HTTP Request: GET http://127.0.0.1:1717/callback?code=%s&state=st4te \"200 OK\"",
             AUTH_CODE)
    log.info("token request: code=%s&grant_type=authorization_code", AUTH_CODE)
    log.debug("headers: {'Authorization': 'Bearer %s', 'Accept': 'application/json'}", SF_ACCESS)
    log.warning("Authorization: Basic %s", BASIC)
    log.warning("retrying with header Authorization: Bearer %s", STRIPE_SECRET)
    lib.warning("stripe key in use %s, restricted %s, publishable %s, webhook %s",
                STRIPE_TEST_SECRET, STRIPE_RESTRICTED, STRIPE_PUBLISHABLE, STRIPE_WEBHOOK)
    log.error("login failed for lucy@example.com password=%s", PASSWORD)
    log.error("session %s expired", SF_ACCESS)
    try:
        raise ValueError(f"Stripe rejected key {STRIPE_SECRET} for {SF_REFRESH!r}")
    except ValueError:
        log.exception("connect failed")
    log.info("stack for refresh_token=%s", SF_REFRESH, stack_info=True)
    _flush()

    text = path.read_text()
    for secret in ALL_SECRETS:
        for part in _secret_parts(secret):
            assert part not in text, f"{part[:12]}... leaked into the log"
    # What helps debugging stays: the shapes, ids that are not secrets, the events.
    assert text.count("[REDACTED]") >= 18
    assert "grant_type=refresh_token" in text
    assert "client_id=3MVG9lKcPoNINVBJSoQsNCD" in text
    assert "00D5g000004XyZ1!" "[REDACTED]" in text
    assert "sk_" "live_[REDACTED]" in text and "whsec_[REDACTED]" in text
    assert "https://acme.my.salesforce.com" in text
    assert "lucy@example.com" in text
    assert "Traceback" in text and "ValueError" in text
    assert "state=st4te" in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Authorization: Bearer abc.def", "Authorization: Bearer [REDACTED]"),
        ("proxy-authorization: Basic Zm9vOmJhcg==", "proxy-authorization: Basic [REDACTED]"),
        ('"authorization": "OAuth 00Dabc"', '"authorization": "OAuth [REDACTED]"'),
        ("grant_type=authorization_code&code=xyz&redirect_uri=http://127.0.0.1:1717/cb",
         "grant_type=authorization_code&code=[REDACTED]&redirect_uri=http://127.0.0.1:1717/cb"),
        ("'client_secret': 's3cr3t'", "'client_secret': '[REDACTED]'"),
        ("error_code=INVALID_SESSION_ID", "error_code=INVALID_SESSION_ID"),
        ('{"code": "card_declined"}', '{"code": "card_declined"}'),
        ("cus_NffrFeUfNV2Hib evt_1NG8Du2eZvKYlo2CUI79vXWy",
         "cus_NffrFeUfNV2Hib evt_1NG8Du2eZvKYlo2CUI79vXWy"),
        ("org 00D5g000004XyZ1EAI", "org 00D5g000004XyZ1EAI"),
        ("token=x1&sid=00D5g000004XyZ1%21AQ0.abc_d", "token=[REDACTED]&sid=[REDACTED]"),
        ("body access=00D5g000004XyZ1EAI%21AQ0.abc_d&x=1",
         "body access=00D5g000004XyZ1EAI%21[REDACTED]&x=1"),
    ],
)
def test_redact_keeps_what_is_not_secret(raw: str, expected: str) -> None:
    assert redact(raw) == expected


def test_log_files_are_private_and_rotate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lc_console.logs.MAX_BYTES", 2000)
    path = setup_logging(tmp_path / "logs" / "lc-console.log")
    assert path is not None
    log = logging.getLogger("lc_console.test")
    for i in range(100):
        log.warning("line %d with key %s", i, STRIPE_TEST_SECRET)
    _flush()
    files = sorted(path.parent.iterdir())
    assert len(files) > 1  # rotated
    assert len(files) <= 6  # current + BACKUP_COUNT
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o600
        assert _secret_parts(STRIPE_TEST_SECRET)[0] not in f.read_text()
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_setup_is_idempotent_and_follows_the_log_dir(tmp_path: Path) -> None:
    setup_logging(tmp_path / "a" / "x.log")
    setup_logging(tmp_path / "b" / "x.log")
    ours = [h for h in logging.getLogger().handlers if isinstance(h, PrivateRotatingFileHandler)]
    assert len(ours) == 1 and ours[0].baseFilename == str(tmp_path / "b" / "x.log")


def test_unwritable_log_dir_does_not_break_the_cli(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert setup_logging(blocker / "logs" / "x.log") is None


def test_level_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_CONSOLE_LOG_LEVEL", "debug")
    path = setup_logging(tmp_path / "x.log")
    assert path is not None
    logging.getLogger("lc_console.test").debug("visible at debug")
    _flush()
    assert "visible at debug" in path.read_text()


def test_cli_sets_up_the_log_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "path"]) == 0
    ours = [h for h in logging.getLogger().handlers if isinstance(h, PrivateRotatingFileHandler)]
    assert [h.baseFilename for h in ours] == [str(paths.log_file())]
    assert paths.log_file().exists()
