"""Settings: TOML round trip, validation errors that name file + key + what is allowed, private
atomic writes, and no secret ever in the file."""

from __future__ import annotations

import dataclasses
import os
import stat
import typing
from pathlib import Path
from typing import Any

import pytest

from lc_console import paths, secrets, settings
from lc_console.settings import Settings, SettingsError


def _write(profile: str, text: str) -> Path:
    path = paths.config_file(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_when_no_file_and_nothing_is_created() -> None:
    loaded = settings.load("default")
    assert loaded == Settings()
    assert loaded.salesforce.callback_port == 1717
    assert loaded.sync.throttle_threshold_percent == 80
    assert loaded.ui.theme == "lc-dark"
    assert not paths.config_file("default").exists()


def test_round_trip(isolated_dirs: Path) -> None:
    s = Settings()
    s.tls.ca_bundle = "/etc/ssl/corp-ca.pem"
    s.salesforce.environment = "custom"
    s.salesforce.login_url = "https://acme.my.salesforce.com"
    s.salesforce.client_id = "3MVG9lKcPoNINVBJSoQsNCD.HHDdbugPsNXwwyFbgb47KWa_PTv"
    s.stripe.mode = "live"
    s.sync.throttle_threshold_percent = 75
    s.sync.poll_interval_seconds = 0.5
    s.rules.stage_mapping["Succeeded"] = "Closed Won - Recovered"
    s.rules.fields["opportunity.stage"].policy = "lostchurn_wins"
    s.rules.free_mail_domains = ["gmail.com", "example.org"]
    path = settings.save("acme", s)
    assert path == paths.config_file("acme")
    assert str(path).startswith(str(isolated_dirs / "config"))
    assert path.name == "acme.toml"
    assert settings.load("acme") == s
    assert settings.load("default") == Settings()  # profiles are separate files


def test_dotted_set_and_get_including_keys_with_dots() -> None:
    s = settings.set_value(Settings(), "sync.throttle_threshold_percent", "75")
    s = settings.set_value(s, "tls.ca_bundle", "/path/ca.pem")
    s = settings.set_value(s, "salesforce.callback_ports", "1717, 1800")
    s = settings.set_value(s, "salesforce.is_sandbox", "yes")
    s = settings.set_value(s, "rules.fields.contact.email.policy", "lostchurn_wins")
    assert settings.get_value(s, "sync.throttle_threshold_percent") == 75
    assert s.tls.ca_bundle == "/path/ca.pem"
    assert s.salesforce.callback_ports == [1717, 1800]
    assert s.salesforce.is_sandbox is True
    assert settings.get_value(s, "rules.fields.contact.email.policy") == "lostchurn_wins"


@pytest.mark.parametrize(
    ("dotted", "value", "needles"),
    [
        ("sync.throttle_threshold_percent", "150", ["sync.throttle_threshold_percent",
                                                    "between 1 and 100"]),
        ("sync.throttle_threshold_percent", "lots", ["expected an integer", "'lots'"]),
        ("sync.throttle_treshold_percent", "75", ["unknown key sync.throttle_treshold_percent",
                                                  "throttle_threshold_percent"]),
        ("salesforce.environment", "staging", ["'production', 'sandbox', 'custom'"]),
        ("stripe.mode", "prod", ["'test', 'live'"]),
        ("salesforce.is_sandbox", "maybe", ["true or false"]),
        ("rules.fields.contact.email.policy", "mine", ["lostchurn_wins", "fill_if_empty"]),
        ("rules.stage_mapping.Lost", "Closed Lost", ["Started, Retrying, Succeeded, Exhausted"]),
        ("sync", "1", ["is a table"]),
    ],
)
def test_set_value_errors_name_the_key_and_what_is_allowed(dotted: str, value: str,
                                                           needles: list[str]) -> None:
    with pytest.raises(SettingsError) as err:
        settings.set_value(Settings(), dotted, value)
    for needle in needles:
        assert needle in str(err.value)


@pytest.mark.parametrize(
    ("content", "key", "needles"),
    [
        ("[sync\nthrottle_threshold_percent = 75\n", None, ["not valid TOML", "line 1"]),
        ("[sync]\nthrottle_treshold_percent = 75\n", "sync.throttle_treshold_percent",
         ["unknown key sync.throttle_treshold_percent", "throttle_threshold_percent",
          "poll_interval_seconds"]),
        ("[sync]\nmax_batch_size = \"many\"\n", "sync.max_batch_size",
         ["sync.max_batch_size", "expected an integer", "'many'"]),
        ("[sync]\nthrottle_threshold_percent = 0\n", "sync.throttle_threshold_percent",
         ["sync.throttle_threshold_percent", "between 1 and 100"]),
        ("[salesforce]\ncallback_port = 80\n", "salesforce.callback_port",
         ["between 1024 and 65535"]),
        ("[salesforce]\nenvironment = \"prod\"\n", "salesforce.environment",
         ["'production', 'sandbox', 'custom'"]),
        ("[ui]\ntheme = \"solarized\"\n", "ui.theme", ["'lc-dark', 'lc-light'"]),
        ("tls = \"/ca.pem\"\n", "tls", ["tls: expected a table"]),
        ("colour = \"blue\"\n", "colour", ["unknown key colour", "salesforce", "sync"]),
    ],
)
def test_broken_file_gives_an_error_with_file_key_and_fix_and_is_not_overwritten(
        content: str, key: str | None, needles: list[str]) -> None:
    path = _write("default", content)
    before = path.read_bytes()
    with pytest.raises(SettingsError) as err:
        settings.load("default")
    message = str(err.value)
    assert str(path) in message
    assert "nothing was overwritten" in message
    for needle in needles:
        assert needle in message
    assert err.value.path == path
    assert err.value.key == key
    assert path.read_bytes() == before


def test_save_is_private_and_atomic(monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write("default", "[sync]\nthrottle_threshold_percent = 70\n")
    os.chmod(path, 0o644)  # a hand-made file; our write tightens it
    s = settings.load("default")
    s.sync.throttle_threshold_percent = 60
    settings.save("default", s)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.load("default").sync.throttle_threshold_percent == 60

    # A crash between writing the temp file and renaming it leaves the old file whole.
    def crash(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    s.sync.throttle_threshold_percent = 50
    with monkeypatch.context() as m:
        m.setattr(os, "replace", crash)
        with pytest.raises(OSError, match="disk full"):
            settings.save("default", s)
    assert settings.load("default").sync.throttle_threshold_percent == 60
    assert sorted(p.name for p in path.parent.iterdir()) == ["default.toml"]  # no temp left


def _leaf_keys(cls: Any, data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Every settable (dotted key, type, metadata) of the settings tree."""
    out: list[tuple[str, Any]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += _leaf_keys(tp, data[f.name], f"{key}.")
        elif typing.get_origin(tp) is dict:
            value_tp = typing.get_args(tp)[1]
            for name in data[f.name]:
                if dataclasses.is_dataclass(value_tp):
                    out += _leaf_keys(value_tp, data[f.name][name], f"{key}.{name}.")
                else:
                    out.append((f"{key}.{name}", (value_tp, {})))
        else:
            out.append((key, (tp, f.metadata)))
    return out


def _sample(key: str, tp: Any, meta: typing.Mapping[str, Any], default: Any) -> str:
    """A valid, non-default text value for a key, as a user would pass to `config set`."""
    if meta.get("choices"):
        return str(meta["choices"][-1])
    if meta.get("range"):
        lo, hi = meta["range"]
        return str(int(hi) if hi is not None else int(default) + 1)
    if typing.get_origin(tp) is list:
        item = typing.get_args(tp)[0]
        return "2001, 2002" if item is int else "example.net, example.org"
    if tp is bool:
        return "true"
    if tp is int:
        return "42"
    if tp is float:
        return "4.5"
    if key.startswith("rules.fields.") and key.endswith(".target"):
        return "Contact.Some_Field__c"
    if key.startswith("rules.stage_mapping."):
        return "Closed Won"
    return f"value-of-{key}"


def test_every_setting_written_and_the_file_holds_no_secret(memory_keyring: Any) -> None:
    profile = "default"
    stored = {
        secrets.SecretKind.SALESFORCE_REFRESH_TOKEN:
            "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJo7Xrg2mq.Hzl8Bp0vbdnHM4KtsMZsHnVcbfwNxXXjQK3",
        secrets.SecretKind.SALESFORCE_ACCESS_TOKEN:
            "00D5g000004XyZ1!" "AQ0AQH7f8kR2mPqN3vW.xYzT9bLc4dE5fG6hJ7kL8mN9pQ0rS1tU2vW3xY4zA5",
        secrets.SecretKind.STRIPE_API_KEY: "sk_" "live_51HqLyjWDarjtT1zdp7dcXYZ0SGYgHxFqmwDHWtSEB7",
    }
    for kind, value in stored.items():
        secrets.put(profile, kind, value)
    assert set(stored) == set(secrets.SecretKind)  # a new kind must be added above

    current = settings.load(profile)
    keys = _leaf_keys(Settings, settings.to_dict(current))
    assert len(keys) > 60
    for key, (tp, meta) in keys:
        default = settings.get_value(current, key)
        current = settings.set_value(current, key, _sample(key, tp, meta, default))
        settings.save(profile, current)
    assert settings.load(profile) == current
    assert current.ui.theme == "lc-light" and current.sync.throttle_threshold_percent == 100

    text = paths.config_file(profile).read_text()
    for value in stored.values():
        assert value not in text
        assert value[10:30] not in text
    for marker in ("sk_live", "sk_test", "rk_live", "00D5g000004XyZ1!" "", "5Aep861"):
        assert marker not in text
    # No key of the schema is meant to hold a secret.
    for key, _ in keys:
        leaf = key.rsplit(".", 1)[-1].lower()
        assert not any(w in leaf for w in ("token", "secret", "password", "api_key")), key
    # The secrets are still where they belong.
    assert all(secrets.status(profile).values())
