"""services/status.py: what the home screen (and later `lc-console status`) says about a profile."""

from __future__ import annotations

import keyring
import keyring.backends.fail
import pytest

from lc_console import paths, secrets, settings
from lc_console.secrets import SecretKind
from lc_console.services.status import Connection, SecretState, gather, stripe_key_kind
from lc_console.store import OutboxItem, Store

PROFILE = "default"


def save(**changes: object) -> settings.Settings:
    cfg = settings.Settings()
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        setattr(getattr(cfg, section), key, value)
    settings.save(PROFILE, cfg)
    return cfg


def connect_both(is_sandbox: bool = False, stripe_mode: str = "live") -> None:
    save(salesforce__org_id="00D000000000001EAA", salesforce__org_name="Acme",
         salesforce__is_sandbox=is_sandbox, stripe__account_id="acct_1", stripe__mode=stripe_mode)
    secrets.put(PROFILE, SecretKind.SALESFORCE_REFRESH_TOKEN, "refresh-token-value")
    secrets.put(PROFILE, SecretKind.STRIPE_API_KEY, "rk_" "live_secretvalue123")


def commands(status: object) -> list[str]:
    return [s.command for s in status.next_steps]  # type: ignore[attr-defined]


def test_new_profile_is_not_connected_and_says_to_connect_both() -> None:
    st = gather(PROFILE)
    assert st.salesforce.connection is Connection.NOT_CONNECTED
    assert st.stripe.connection is Connection.NOT_CONNECTED
    assert st.salesforce.tokens is SecretState.MISSING
    assert st.sync.summary == "never run" and st.sync.last_sync is None
    assert commands(st) == ["lc-console connect salesforce", "lc-console connect stripe"]
    assert st.warnings == []


def test_gathering_never_creates_the_state_database() -> None:
    gather(PROFILE)
    assert not paths.state_db(PROFILE).exists()
    assert not paths.config_file(PROFILE).exists()


def test_connected_profile_points_to_install_then_sync() -> None:
    connect_both()
    st = gather(PROFILE)
    assert st.salesforce.connection is Connection.CONNECTED
    assert st.salesforce.org_kind == "Production"
    assert st.stripe.connection is Connection.CONNECTED
    assert st.stripe.key_kind == "restricted key"
    assert commands(st) == ["lc-console install --plan", "lc-console sync --dry-run"]


def test_secret_values_never_leave_the_service() -> None:
    connect_both()
    text = repr(gather(PROFILE))
    assert "refresh-token-value" not in text and "secretvalue123" not in text


def test_org_in_settings_without_tokens_asks_to_reconnect() -> None:
    save(salesforce__org_id="00D000000000001EAA")
    st = gather(PROFILE)
    assert st.salesforce.connection is Connection.SECRET_MISSING
    assert st.next_steps[0].title == "Reconnect Salesforce"


def test_tokens_without_an_org_are_an_interrupted_connect() -> None:
    secrets.put(PROFILE, SecretKind.SALESFORCE_REFRESH_TOKEN, "refresh")
    st = gather(PROFILE)
    assert st.salesforce.connection is Connection.SECRET_MISSING


def test_expired_login_pauses_the_sync_and_asks_to_reconnect() -> None:
    connect_both()
    cfg = settings.load(PROFILE)
    cfg.salesforce.connection_expired = True
    settings.save(PROFILE, cfg)
    with Store(paths.state_db(PROFILE)) as store:
        store.set_cursor("evt_1", 1_700_000_000)
    st = gather(PROFILE)
    assert st.salesforce.connection is Connection.EXPIRED
    assert st.sync.summary.startswith("paused: Salesforce login expired")
    assert st.next_steps[0].title == "Reconnect Salesforce"
    assert "paused" in st.next_steps[0].detail


@pytest.mark.parametrize(("key", "kind"), [("rk_" "live_x", "restricted key"),
                                           ("sk_test_x", "secret key"),
                                           ("pk_test_x", "unrecognised key")])
def test_stripe_key_kind_comes_from_the_prefix(key: str, kind: str) -> None:
    assert stripe_key_kind(key) == kind


def test_stripe_key_alone_counts_as_connected() -> None:
    secrets.put(PROFILE, SecretKind.STRIPE_API_KEY, "sk_test_abc")
    st = gather(PROFILE)
    assert st.stripe.connection is Connection.CONNECTED
    assert st.stripe.key_kind == "secret key"


@pytest.mark.parametrize(("is_sandbox", "mode", "warned"), [
    (False, "test", "Production org with a Stripe test key"),
    (True, "live", "Sandbox org with a live Stripe key"),
    (True, "test", None),
    (False, "live", None),
])
def test_mixing_production_and_test_data_is_flagged(is_sandbox: bool, mode: str,
                                                    warned: str | None) -> None:
    connect_both(is_sandbox=is_sandbox, stripe_mode=mode)
    warnings = gather(PROFILE).warnings
    if warned:
        assert len(warnings) == 1 and warned in warnings[0]
    else:
        assert warnings == []


def test_no_keyring_gives_the_fix_and_nothing_else_to_do() -> None:
    save(salesforce__org_id="00D000000000001EAA")
    keyring.set_keyring(keyring.backends.fail.Keyring())  # conftest restores the previous one
    st = gather(PROFILE)
    assert st.salesforce.tokens is SecretState.UNAVAILABLE
    assert st.stripe.key is SecretState.UNAVAILABLE
    assert st.salesforce.connection is Connection.UNKNOWN
    assert secrets.HOW_TO_FIX in st.keyring_error
    assert [s.title for s in st.next_steps] == ["Make the OS keyring available"]
    assert st.next_steps[0].key == "d"


def test_sync_history_comes_from_the_state_database() -> None:
    connect_both()
    with Store(paths.state_db(PROFILE), clock=lambda: 1_795_000_000.0) as store:
        store.set_cursor("evt_1", 1_794_999_990)
        store.outbox_enqueue([OutboxItem(object="Contact", key_field="Email", key_value="a@b.c",
                                         operation="upsert", payload={})])
        store.record_failure(object="Account", key="cus_1", operation="upsert", payload={},
                             error_code="REQUIRED_FIELD_MISSING", message="Name missing")
        resolved = store.record_failure(object="Account", key="cus_2", operation="upsert",
                                        payload={}, error_code="X", message="y")
        store.set_failure_status([resolved], "resolved")
    st = gather(PROFILE)
    assert st.sync.has_run
    assert st.sync.last_sync is not None and st.sync.last_sync.timestamp() == 1_795_000_000.0
    assert st.sync.pending_writes == 1
    assert st.sync.open_failures == 1
    assert st.sync.summary == "1 writes queued, 1 failed records"
    assert "lc-console failures list" in commands(st)
    assert commands(st)[-1] == "lc-console sync"


def test_unreadable_state_database_is_reported_with_the_way_out() -> None:
    connect_both()
    db = paths.state_db(PROFILE)
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a SQLite database" * 100)
    st = gather(PROFILE)
    assert st.sync.summary == "state database unusable"
    assert "move it away" in st.sync.error
    assert st.next_steps[0].title == "Repair the state database"


def test_broken_settings_raise_for_the_caller_to_show() -> None:
    path = paths.config_file(PROFILE)
    path.parent.mkdir(parents=True)
    path.write_text("[stripe]\nmode = 'sandbox'\n")
    with pytest.raises(settings.SettingsError) as info:
        gather(PROFILE)
    assert info.value.key == "stripe.mode"
