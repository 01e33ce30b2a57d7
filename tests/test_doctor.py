"""`lc-console doctor`: what it reports, and that every failure says how to fix it."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lc_console import __version__, paths, settings
from lc_console.cli import main
from lc_console.services import doctor
from lc_console.store import Store


@pytest.fixture(autouse=True)
def _drop_log_handlers() -> Iterator[None]:
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)
        handler.close()


def doctor_out(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["doctor", *extra])
    return code, capsys.readouterr().out


def line(out: str, name: str) -> str:
    found = [ln for ln in out.splitlines() if f"] {name}:" in ln]
    assert len(found) == 1, out
    return found[0]


def test_healthy_environment(capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLORTERM", "truecolor")
    code, out = doctor_out(capsys)
    assert code == 0, out
    assert "FAIL" not in out
    versions = line(out, "versions")
    assert versions.startswith("[  ok] versions: ")
    for part in (f"lc-console {__version__}", "Python 3.", "textual 8.", "keyring ",
                 "simple-salesforce ", "stripe ", "httpx ", "platformdirs ", "tomli-w "):
        assert part in versions
    assert f"config {paths.config_file('default')}" in line(out, "paths")
    assert f"state {paths.state_db('default')}" in line(out, "paths")
    assert f"log {paths.log_file()}" in line(out, "paths")
    assert "not created yet (defaults in use)" in line(out, "settings")
    assert "not created yet" in line(out, "state")
    assert line(out, "keyring") == ("[  ok] keyring: conftest.MemoryKeyring stores and reads "
                                    "secrets")
    assert line(out, "terminal").startswith("[info] terminal: TERM=xterm-256color")
    assert "truecolor" in line(out, "terminal")
    assert line(out, "tls") == "[  ok] tls: system CA bundle only (tls.ca_bundle not set)"


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = doctor_out(capsys, "--json")
    assert code == 0
    checks = {c["name"]: c for c in json.loads(out)}
    assert {"versions", "settings", "paths", "state", "keyring", "terminal", "tls"} <= set(checks)
    assert checks["terminal"]["level"] == "info"
    assert all(c["ok"] for c in checks.values())


def test_no_keyring_fails_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        code, out = doctor_out(capsys)
    finally:
        keyring.set_keyring(previous)
    assert code == 1
    assert "[FAIL] keyring: No OS keyring backend is available." in out
    fix = out.split("[FAIL] keyring:", 1)[1].splitlines()[1]
    assert fix.strip().startswith("fix: lc-console keeps tokens and API keys only in the OS")
    assert "gnome-keyring" in fix and "PYTHON_KEYRING_BACKEND" in fix


@pytest.mark.secret_service
def test_real_secret_service(secret_service: keyring.backend.KeyringBackend,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out = doctor_out(capsys)
    assert code == 0, out
    assert line(out, "keyring") == ("[  ok] keyring: keyring.backends.SecretService.Keyring "
                                    "stores and reads secrets")


def test_broken_settings_fail_with_file_and_fix(capsys: pytest.CaptureFixture[str]) -> None:
    path = paths.config_file("default")
    path.parent.mkdir(parents=True)
    path.write_text("[sync]\nthrottle_threshold_percent = 101\n")
    code, out = doctor_out(capsys)
    assert code == 1
    settings_line = line(out, "settings")
    assert settings_line.startswith("[FAIL] settings: ")
    assert str(path) in settings_line and "between 1 and 100" in settings_line
    assert f"fix: Edit {path} or run `lc-console config set`." in out
    assert "settings unreadable" in line(out, "tls")  # other checks still run
    assert path.read_text() == "[sync]\nthrottle_threshold_percent = 101\n"


def _ca_pem(tmp_path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corp Inspection CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp_path / "corp-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_tls_ca_bundle_checks(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ca = _ca_pem(tmp_path)
    main(["config", "set", "tls.ca_bundle", str(ca)])
    code, out = doctor_out(capsys)
    assert code == 0
    assert line(out, "tls") == f"[  ok] tls: extra CA trusted: {ca}"

    missing = tmp_path / "nope.pem"
    main(["config", "set", "tls.ca_bundle", str(missing)])
    code, out = doctor_out(capsys)
    assert code == 1
    assert line(out, "tls") == f"[FAIL] tls: tls.ca_bundle {missing} does not exist"
    assert "fix: Point tls.ca_bundle at a PEM file: lc-console config set tls.ca_bundle" in out

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    main(["config", "set", "tls.ca_bundle", str(garbage)])
    code, out = doctor_out(capsys)
    assert code == 1
    assert "is not a PEM CA file" in line(out, "tls")
    assert "Export the CA certificate in PEM format" in out


def test_state_database_check(capsys: pytest.CaptureFixture[str]) -> None:
    with Store.for_profile("default") as store:
        store.record_failure(object="Contact", key="a@x.com", operation="upsert", payload={},
                             error_code="E", message="m")
    code, out = doctor_out(capsys)
    assert code == 0
    assert line(out, "state") == (f"[  ok] state: {paths.state_db('default')} (schema v1, "
                                  "0 writes pending, 1 failed records open)")

    paths.state_db("acme").parent.mkdir(parents=True)
    paths.state_db("acme").write_bytes(b"garbage" * 1000)
    code, out = doctor_out(capsys, "--profile", "acme")
    assert code == 1
    assert line(out, "state").startswith(f"[FAIL] state: {paths.state_db('acme')}")
    assert "fix: Move the file away" in out


def test_a_crashing_check_does_not_hide_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    def check_boom(profile: str) -> doctor.Check:
        raise RuntimeError("kaput")

    monkeypatch.setattr(doctor, "CHECKS", [*doctor.CHECKS, check_boom])
    results = doctor.run_checks("default")
    assert results[-1] == doctor.Check("boom", False, "check crashed: RuntimeError: kaput",
                                       "Report this with the log file attached.")
    assert all(r.ok for r in results[:-1])
    assert settings.load("default") == settings.Settings()
