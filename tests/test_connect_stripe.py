"""Connecting Stripe: key classes, the permission table against the Stripe sandbox, storage,
the CLI twin and the screen. The key is never printed."""

from __future__ import annotations

import io
import socket
from typing import Any

import pytest
from textual.widgets import Input, Static

from lc_console import cli, secrets, settings
from lc_console.app import make_app
from lc_console.screens.connect_stripe import ConnectStripeScreen
from lc_console.secrets import SecretKind
from lc_console.services import connect
from lc_console.services.connect import ConnectError
from lc_console.stripe import keys

PROFILE = "default"


@pytest.fixture
def sk(stripe_sandbox: Any) -> Any:
    cfg = settings.Settings()
    cfg.stripe.api_base = stripe_sandbox.url
    settings.save(PROFILE, cfg)
    return stripe_sandbox


def stored_key() -> str | None:
    return secrets.get(PROFILE, SecretKind.STRIPE_API_KEY)


# --- classification (no network) ---------------------------------------------------------------


@pytest.mark.parametrize(("key", "kind", "mode", "warned"), [
    ("rk_" "live_51Nv0FGQ9RKHgCVdKabcdef", keys.KeyKind.RESTRICTED, "live", False),
    ("  rk_test_51Nv0FGQ9RKHgCVdKabcdef\n", keys.KeyKind.RESTRICTED, "test", False),
    ("sk_" "live_51Nv0FGQ9RKHgCVdKabcdef", keys.KeyKind.SECRET, "live", True),
    ("sk_test_51Nv0FGQ9RKHgCVdKabcdef", keys.KeyKind.SECRET, "test", True),
])
def test_classify_accepts(key: str, kind: keys.KeyKind, mode: str, warned: bool) -> None:
    kc = keys.classify(key)
    assert (kc.kind, kc.mode, bool(kc.warning)) == (kind, mode, warned)


@pytest.mark.parametrize(("key", "says"), [
    ("pk_live_51Nv0FGQ9RKHgCVdKabcdef", "is a publishable key"),
    ("pk_test_51Nv0FGQ9RKHgCVdKabcdef", "Create a restricted key"),
    ("whsec_abcdefghijklmnop", "webhook signing secret"),
    ("", "No key given"),
    ("rk_" "live_51Nv0 FGQ9RKHgCVdK", "does not look like a Stripe API key"),
    ("acct_1Nv0FGQ9RKHgCVdK", "does not look like a Stripe API key"),
])
def test_classify_refuses_with_an_explanation(key: str, says: str) -> None:
    with pytest.raises(keys.KeyRefused, match=says):
        keys.classify(key)


def test_mask_never_shows_the_secret_part() -> None:
    assert keys.mask("rk_" "live_51Nv0FGQ9RKHgCVdKsecretpart") == "rk_" "live_…part"
    assert "51Nv0" not in keys.mask("sk_test_51Nv0FGQ9RKHgCVdKsecretpart")


def test_publishable_key_never_reaches_stripe() -> None:
    class Boom:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError("Stripe was called")

    with pytest.raises(keys.KeyRefused):
        keys.check_key("pk_live_51Nv0FGQ9RKHgCVdKabcdef", api_base="http://x", client=Boom())  # type: ignore[arg-type]


# --- against the Stripe sandbox ---------------------------------------------------------------------


def test_restricted_key_all_permissions_is_stored(sk: Any) -> None:
    result = connect.connect_stripe(PROFILE, sk.keys["restricted"])
    check = result.check
    assert result.stored and check.ok
    assert (check.kind, check.mode) == (keys.KeyKind.RESTRICTED, "test")
    assert check.account_id.startswith("acct_") and check.account_name
    assert [p.permission for p in check.permissions] == [
        "Customers: Read", "Subscriptions: Read", "Invoices: Read", "Charges: Read",
        "PaymentIntents: Read", "Events: Read", "Refunds: Read"]
    assert all(p.granted for p in check.permissions)
    assert not result.warnings
    assert stored_key() == sk.keys["restricted"]
    cfg = settings.load(PROFILE).stripe
    assert (cfg.mode, cfg.account_id, cfg.account_name) == ("test", check.account_id,
                                                             check.account_name)


def test_restricted_key_missing_a_permission_gives_the_table_and_stores_nothing(sk: Any) -> None:
    result = connect.connect_stripe(PROFILE, sk.keys["restricted_missing"])
    assert not result.stored
    table = {p.resource: (p.granted, p.api_name) for p in result.check.permissions}
    assert table["Invoices"] == (False, "rak_invoice_read")
    assert all(granted for name, (granted, _) in table.items() if name != "Invoices")
    msg = result.missing_message()
    assert msg.title == "The key lacks read permissions the sync needs."
    assert "Missing: Invoices: Read (rak_invoice_read). Nothing was stored." == msg.detail
    assert "edit the restricted key" in msg.fix
    assert stored_key() is None
    assert settings.load(PROFILE).stripe.account_id == ""


def test_secret_key_is_accepted_with_a_warning(sk: Any) -> None:
    result = connect.connect_stripe(PROFILE, sk.keys["secret"])
    assert result.stored and result.check.kind is keys.KeyKind.SECRET
    assert result.warnings[0].startswith("This is a secret key")


def test_unknown_key_is_rejected(sk: Any) -> None:
    with pytest.raises(ConnectError) as info:
        connect.connect_stripe(PROFILE, "rk_test_" + "x" * 40)
    msg = info.value.message
    assert msg.title == "Stripe did not accept the key."
    assert "rk_test_…xxxx" in msg.detail and "x" * 10 not in msg.text()
    assert stored_key() is None


def test_unreachable_stripe(sk: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    cfg = settings.load(PROFILE)
    cfg.stripe.api_base = f"http://127.0.0.1:{dead}"
    settings.save(PROFILE, cfg)
    with pytest.raises(ConnectError) as info:
        connect.connect_stripe(PROFILE, sk.keys["restricted"])
    assert info.value.message.title == "Could not check the key with Stripe."
    assert f"127.0.0.1:{dead}" in info.value.message.detail


def test_mode_mismatch_warnings(sk: Any) -> None:
    cfg = settings.load(PROFILE)
    cfg.salesforce.org_id = "00D8d0000000001EAA"
    cfg.salesforce.is_sandbox = False
    settings.save(PROFILE, cfg)
    result = connect.connect_stripe(PROFILE, sk.keys["restricted"])
    assert ("A Production org with a Stripe test key: test data would reach your production CRM."
            in result.warnings)
    cfg = settings.load(PROFILE)
    cfg.salesforce.is_sandbox = True
    settings.save(PROFILE, cfg)
    result = connect.connect_stripe(PROFILE, sk.live_keys["restricted"])
    assert result.check.mode == "live"
    assert ("A Sandbox org with a live Stripe key: real customers' data would go to a sandbox."
            in result.warnings)
    assert connect.mode_mismatch(True, "test") == "" and connect.mode_mismatch(None, "live") == ""


# --- CLI ---------------------------------------------------------------------------------------------


def run(args: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = cli.main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_key_stdin(sk: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    key = sk.keys["restricted"]
    rc, out, err = run(["connect", "stripe", "--key-stdin"], key + "\n", monkeypatch, capsys)
    assert rc == 0, err
    assert "Stripe test account acct_" in out
    assert "Events: Read" in out and "granted" in out and "MISSING" not in out
    assert "Key stored in the OS keyring." in out
    assert key not in out + err
    assert stored_key() == key


def test_cli_missing_permission_exits_non_zero(sk: Any, monkeypatch: pytest.MonkeyPatch,
                                               capsys: Any) -> None:
    key = sk.keys["restricted_missing"]
    rc, out, err = run(["connect", "stripe", "--key-stdin"], key, monkeypatch, capsys)
    assert rc == 1
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("Invoices: Read"))
    assert "MISSING" in line and "rak_invoice_read" in line
    assert "error: The key lacks read permissions the sync needs." in err
    assert key not in out + err
    assert stored_key() is None


def test_cli_hidden_prompt(sk: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    # no terminal: say how to pipe the key instead of hanging
    rc, _, err = run(["connect", "stripe"], "", monkeypatch, capsys)
    assert rc == 1 and "--key-stdin" in err
    # a terminal: getpass reads it without echo
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return sk.keys["restricted"]

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setattr("sys.stdin", type("TTY", (io.StringIO,), {"isatty": lambda self: True})())
    rc = cli.main(["connect", "stripe"])
    assert rc == 0 and prompts and "not shown" in prompts[0]
    assert stored_key() == sk.keys["restricted"]


def test_cli_publishable_key(sk: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    rc, _, err = run(["connect", "stripe", "--key-stdin"], "pk_test_51Nv0FGQ9RKHgCVdKabcdef",
                     monkeypatch, capsys)
    assert rc == 1
    assert "error: That key cannot be used." in err and "publishable" in err


# --- the screen against the sandbox ----------------------------------------------------------------


async def test_screen_checks_and_stores_against_the_sandbox(sk: Any) -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = ConnectStripeScreen(PROFILE)
        await app.push_screen(screen)
        await pilot.pause()
        screen.query_one("#key", Input).value = sk.keys["restricted_missing"]
        await pilot.press("enter")
        for _ in range(300):
            await pilot.pause(0.02)
            if screen.query_one("#stripe-result").display:
                break
        outcome = str(screen.query_one("#stripe-outcome", Static).render())
        assert "Invoices: Read (rak_invoice_read)" in outcome
        assert stored_key() is None
        screen.query_one("#key", Input).value = sk.keys["restricted"]
        await pilot.press("ctrl+s")
        for _ in range(300):
            await pilot.pause(0.02)
            if "stored" in str(screen.query_one("#stripe-outcome", Static).render()):
                break
        assert stored_key() == sk.keys["restricted"]
        assert screen.query_one("#key", Input).value == ""


def test_doctor_connections_with_stripe(sk: Any) -> None:
    from lc_console.services import doctor

    result = connect.connect_stripe(PROFILE, sk.keys["restricted"])
    check = doctor.check_connections(PROFILE)
    assert check.ok and f"Stripe {result.check.account_name} answers" in check.detail
    secrets.put(PROFILE, SecretKind.STRIPE_API_KEY, "rk_test_" + "y" * 40)
    check = doctor.check_connections(PROFILE)
    assert not check.ok and "Stripe: Stripe did not accept the key." in check.detail
