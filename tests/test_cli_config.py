"""The CLI skeleton: --version, --profile everywhere, and `config path|show|set`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from lc_console import __version__, paths, secrets, settings
from lc_console.cli import main

STRIPE = "sk_test_51HqLyjWDarjtT1zdp7dcXYZ0SGYgHxFqmwDHWtSEB7"
REFRESH = "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJo7Xrg2mq.Hzl8Bp0vbdn"


@pytest.fixture(autouse=True)
def _drop_log_handlers() -> Iterator[None]:
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)
        handler.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"lc-console {__version__}"
    assert __version__ == "0.1.0"  # from the installed metadata, not the source fallback


def test_console_script_and_python_m_entry_points() -> None:
    script = Path(sys.executable).parent / "lc-console"
    for argv in ([str(script), "--version"], [sys.executable, "-m", "lc_console", "--version"]):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/tmp")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"lc-console {__version__}"


def test_help_lists_only_working_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "config" in out and "doctor" in out
    assert "not implemented" not in out.lower()


@pytest.mark.parametrize(
    ("argv", "env", "profile"),
    [
        (["config", "path"], None, "default"),
        (["--profile", "acme", "config", "path"], None, "acme"),
        (["config", "--profile", "acme", "path"], None, "acme"),
        (["config", "path", "--profile", "acme"], None, "acme"),
        (["config", "path"], "staging", "staging"),
        (["--profile", "acme", "config", "path"], "staging", "acme"),  # the flag wins
        (["config", "path", "--profile", "acme"], "staging", "acme"),
    ],
)
def test_profile_before_or_after_the_command_and_from_the_environment(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        argv: list[str], env: str | None, profile: str) -> None:
    if env:
        monkeypatch.setenv("LC_CONSOLE_PROFILE", env)
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert out.strip() == str(paths.config_file(profile))
    assert out.strip().endswith(f"lc-console/{profile}.toml")


def test_bad_profile_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--profile", "../etc", "config", "path")
    assert code == 2
    assert "Profile name '../etc' is not allowed" in err


def test_config_show_reports_secrets_without_their_values(
        capsys: pytest.CaptureFixture[str]) -> None:
    secrets.put("default", secrets.SecretKind.STRIPE_API_KEY, STRIPE)
    secrets.put("default", secrets.SecretKind.SALESFORCE_REFRESH_TOKEN, REFRESH)
    code, out, _ = run(capsys, "config", "show")
    assert code == 0
    assert "# profile: default" in out
    assert f"# file: {paths.config_file('default')}" in out
    assert "throttle_threshold_percent = 80" in out
    assert "#   stripe.api_key: stored in keyring" in out
    assert "#   salesforce.refresh_token: stored in keyring" in out
    assert "#   salesforce.access_token: missing" in out
    assert STRIPE not in out and REFRESH not in out
    assert not paths.config_file("default").exists()  # showing never writes

    code, out, _ = run(capsys, "config", "show", "--json", "--profile", "acme")
    data = json.loads(out)
    assert data["profile"] == "acme"
    assert data["settings"]["sync"]["throttle_threshold_percent"] == 80
    assert data["secrets"] == {"salesforce.refresh_token": "missing",
                               "salesforce.access_token": "missing",
                               "stripe.api_key": "missing"}


def test_config_show_without_a_keyring_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        code, out, _ = run(capsys, "config", "show")
    finally:
        keyring.set_keyring(previous)
    assert code == 0
    assert "#   keyring: unavailable: No OS keyring backend is available." in out


def test_config_set_writes_validated_values(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "set", "sync.throttle_threshold_percent", "75")
    assert code == 0
    path = paths.config_file("default")
    assert out.strip() == f"sync.throttle_threshold_percent = 75  ({path})"
    code, out, _ = run(capsys, "config", "set", "tls.ca_bundle", "/path/ca.pem")
    assert code == 0
    code, _, _ = run(capsys, "--profile", "acme", "config", "set",
                     "rules.fields.opportunity.stage.policy", "lostchurn_wins")
    assert code == 0
    loaded = settings.load("default")
    assert loaded.sync.throttle_threshold_percent == 75
    assert loaded.tls.ca_bundle == "/path/ca.pem"
    assert settings.load("acme").rules.fields["opportunity.stage"].policy == "lostchurn_wins"
    assert (path.stat().st_mode & 0o777) == 0o600
    code, out, _ = run(capsys, "config", "show")
    assert 'ca_bundle = "/path/ca.pem"' in out


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("sync.throttle_threshold_percent", "150", "it must be between 1 and 100"),
        ("sync.throttle_threshold_percent", "high", "expected an integer, got 'high'"),
        ("sync.nope", "1", "unknown key sync.nope; allowed here: batch_window_seconds"),
        ("salesforce.environment", "staging", "use one of 'production', 'sandbox', 'custom'"),
    ],
)
def test_config_set_refuses_bad_values_and_keeps_the_file(
        capsys: pytest.CaptureFixture[str], key: str, value: str, needle: str) -> None:
    run(capsys, "config", "set", "sync.max_batch_size", "150")
    path = paths.config_file("default")
    before = path.read_bytes()
    code, out, err = run(capsys, "config", "set", key, value)
    assert code == 2
    assert err.startswith("error: ")
    assert needle in err
    assert out == ""
    assert path.read_bytes() == before


def test_config_on_a_broken_file_names_it_and_never_overwrites(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = paths.config_file("default")
    path.parent.mkdir(parents=True)
    path.write_text("[sync]\nthrottle_threshold_percent = 75\nmax_batch_size = 500\n")
    before = path.read_bytes()
    for argv in (["config", "show"], ["config", "set", "sync.throttle_threshold_percent", "70"]):
        code, _, err = run(capsys, *argv)
        assert code == 2
        assert str(path) in err
        assert "sync.max_batch_size" in err and "between 1 and 200" in err
        assert path.read_bytes() == before


def test_config_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["config"])
    assert exit_.value.code == 2
    assert "required: {path,show,set}" in capsys.readouterr().err


def test_cli_in_a_real_process_uses_the_environment_profile(isolated_dirs: Path) -> None:
    env = {**os.environ, "LC_CONSOLE_PROFILE": "from-env",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    done = subprocess.run([sys.executable, "-m", "lc_console", "config", "set", "stripe.mode",
                           "live"], env=env, capture_output=True, text=True, timeout=60,
                          cwd="/tmp")
    assert done.returncode == 0, done.stderr
    assert (isolated_dirs / "config" / "lc-console" / "from-env.toml").exists()
    assert settings.load("from-env").stripe.mode == "live"
