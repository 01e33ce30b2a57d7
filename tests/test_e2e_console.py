"""The console end to end, driven as an admin would with keys and clicks on the real app
(make_app), against both sandboxes with the real clients (simple-salesforce, stripe) and the
in-memory keyring: the setup wizard to a running first sync, retrying a failed record, and
disconnecting with removal. Checks read what the admin sees and what the org holds."""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe as stripe_lib
from console_helpers import text_of, until
from engine_helpers import connect_stripe, fast_settings, installed_org, org  # noqa: F401
from textual.widgets import Input, RadioButton, RadioSet

from lc_console import secrets, settings
from lc_console.app import make_app
from lc_console.salesforce import tokens
from lc_console.screens.confirm_org_name import ConfirmOrgName
from lc_console.screens.connect_salesforce import ConnectSalesforceScreen
from lc_console.screens.connect_stripe import ConnectStripeScreen
from lc_console.screens.disconnect import DisconnectScreen
from lc_console.screens.failures import FailuresScreen
from lc_console.screens.mapping import MappingScreen
from lc_console.screens.monitor import MonitorScreen
from lc_console.screens.wizard import WizardScreen
from lc_console.secrets import SecretKind
from lc_console.services import wizard as wizard_service
from lc_console.store import Store

pytestmark = pytest.mark.slow

PROFILE = "default"
ORG = "LostChurn Sandbox Org"
BIG = (120, 50)  # room for every field of the sign-in forms without scrolling


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    tokens._managers.clear()
    yield
    tokens._managers.clear()
    # The monitor stops its engine on a thread when it leaves: let it finish here.
    for t in threading.enumerate():
        if t.name == "lc-monitor-stop":
            t.join(30)


def stripe_client(st: Any) -> Any:
    return stripe_lib.StripeClient(st.keys["secret"], base_addresses={"api": st.url})


def active_customers(st: Any) -> list[dict[str, Any]]:
    client = stripe_client(st)
    subs = client.raw_request("get", "/v1/subscriptions", status="active", limit=100).data
    ids = sorted({s["customer"] for s in subs["data"] if s.get("currency") == "usd"
                  and not s.get("cancel_at_period_end")})
    return [dict(client.raw_request("get", f"/v1/customers/{c}").data) for c in ids]


def cursor_set() -> bool:
    with Store.for_profile(PROFILE) as store:
        return store.get_cursor() is not None


def monitor_line(app: Any) -> str:
    return text_of(app, "#monitor-state") if isinstance(app.screen, MonitorScreen) else ""


def synced(app: Any) -> bool:
    """The monitor shows batches written and nothing left in the queue."""
    line = monitor_line(app)
    return "queue 0 ·" in line and " 0 batches" not in line and "batches" in line


def sign_in(sb: Any, url: str) -> None:
    """The admin's browser on the sandbox's login page (as tests/test_connect_salesforce.py's
    Browser does): GET the page, POST the login form, follow the redirect to the callback."""
    client = httpx.Client(verify=ssl.create_default_context(cafile=sb.ca_file), timeout=10)
    page = client.get(url)
    assert page.status_code == 200, page.text
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert request_id, page.text
    answer = client.post(f"{sb.url}/services/oauth2/authorize", data={
        "request_id": request_id.group(1), "action": "Allow",
        "username": sb.admin.username, "password": sb.admin.password})
    assert answer.status_code == 302, answer.text
    callback = httpx.get(answer.headers["Location"], timeout=10)
    assert callback.status_code == 200 and 'data-outcome="success"' in callback.text


async def test_wizard_to_a_running_first_sync(salesforce_sandbox: Any, stripe_sandbox: Any,
                                              memory_keyring: Any) -> None:
    sb, st = salesforce_sandbox, stripe_sandbox
    # What the wizard does not ask, the admin sets with `lc-console config set`: the CA that
    # signs the org's certificate, where Stripe answers, and short sync windows.
    cfg = settings.Settings()
    cfg.tls.ca_bundle = sb.ca_file
    cfg.stripe.api_base = st.url
    settings.save(PROFILE, cfg)
    fast_settings(PROFILE)

    app = make_app(PROFILE, mode="wizard")
    async with app.run_test(size=BIG) as pilot:
        # 1. Environment: the org's own sign-in URL.
        await until(pilot, lambda: isinstance(app.screen, WizardScreen)
                    and "Choose, then press o" in text_of(app, "#wizard-state"))
        await pilot.click("#env-custom")
        await pilot.click("#wizard-domain")
        await pilot.press(*sb.url, "tab", "o")
        await until(pilot, lambda: "Step 2 of 6" in text_of(app, "#wizard-title"))
        assert settings.load(PROFILE).salesforce.login_url == sb.url

        # 2. Salesforce: the URL shown to open elsewhere, signed in there.
        await until(pilot, lambda: "Not connected yet" in text_of(app, "#wizard-state"))
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, ConnectSalesforceScreen))
        assert app.screen.query_one("#domain", Input).value == sb.url
        await pilot.click(app.screen.query_one("#method", RadioSet).query(RadioButton)[1])
        await pilot.click("#client-id")
        await pilot.press(*sb.client_id, "enter")
        await until(pilot, lambda: text_of(app, "#auth-url").startswith(sb.url))
        await asyncio.to_thread(sign_in, sb, text_of(app, "#auth-url"))
        await until(pilot, lambda: ORG in text_of(app, "#connected-title"))
        await pilot.press("enter")  # Done
        await until(pilot, lambda: isinstance(app.screen, WizardScreen)
                    and f"✓ Connected to {ORG}" in text_of(app, "#wizard-state"))

        # 3. Stripe: the restricted key, checked and stored.
        await pilot.press("n", "o")
        await until(pilot, lambda: isinstance(app.screen, ConnectStripeScreen))
        await pilot.click("#key")
        await pilot.press(*st.keys["restricted"], "enter")
        await until(pilot, lambda: "Key stored" in text_of(app, "#stripe-outcome"))
        await pilot.click("#stripe-done")
        await until(pilot, lambda: isinstance(app.screen, WizardScreen)
                    and "✓ 3." in str(app.screen.query_one("#nav-stripe").render()))
        # Both connected: the first sync starts here, so what customers do during the rest
        # of the setup is synced, not skipped.
        await until(pilot, cursor_set)
        customers = active_customers(st)
        dunning, upgrading = customers[0], customers[1]
        st.run_story(dunning["id"], "dunning_recovered", when="now")
        st.run_story(upgrading["id"], "upgrade")

        # 4. Install: deployed to the org.
        await pilot.press("n", "o")
        await until(pilot, lambda: "✓ 4." in str(app.screen.query_one("#nav-install").render()),
                    timeout=60)
        assert text_of(app, "#wizard-state").startswith("✓ Installed")

        # 5. Mapping: reviewed, the defaults kept.
        await pilot.press("n", "o")
        await until(pilot, lambda: isinstance(app.screen, MappingScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, WizardScreen)
                    and "Reviewed" in text_of(app, "#wizard-state"))

        # 6. First sync: the dry run lists creates, nothing written yet; then it runs.
        await pilot.press("n")
        assert text_of(app, "#wizard-title") == "Step 6 of 6: First sync"
        await pilot.press("o")
        await until(pilot, lambda: "pending events" in text_of(app, "#wizard-state"), timeout=30)
        preview = text_of(app, "#wizard-state")
        assert "  Contact: " in preview and " create" in preview, preview
        assert "  LostChurn_Recovery__c: " in preview, preview
        assert sb.records("Contact") == []
        await pilot.press("o")
        await until(pilot, lambda: synced(app), timeout=60)
        line = monitor_line(app)
        assert line.startswith("● running") or "running" in line.lower(), line
        assert "errors 0" in line, line
        objects = text_of(app, "#monitor-objects")
        assert "Contact" in objects and "Recovery__c" in objects and "Account" in objects

    contacts = {r.get("Email"): r for r in sb.records("Contact")}
    assert {dunning["email"], upgrading["email"]} <= set(contacts)
    assert contacts[dunning["email"]]["AccountId"] in {r["Id"] for r in sb.records("Account")}
    # The dunning customer's failed renewal, recovered on the second retry.
    recoveries = [r for r in sb.records("LostChurn_Recovery__c")
                  if r.get("Contact__c") == contacts[dunning["email"]]["Id"]]
    assert recoveries and all(r.get("Recovery_ID__c") for r in recoveries)
    assert settings.load(PROFILE).ui.wizard_completed[-1] == "first_sync"


async def test_a_refused_record_is_retried_from_failures(org: Any,  # noqa: F811
                                                         stripe_sandbox: Any) -> None:
    sb, st = org, stripe_sandbox
    connect_stripe(st)
    fast_settings(PROFILE)
    wizard_service.fix_start_point(PROFILE)
    customer = active_customers(st)[0]["id"]
    st.run_story(customer, "profile_update")
    target = dict(stripe_client(st).raw_request("get", f"/v1/customers/{customer}").data)
    # An org rule the sync's Contact breaks: the record lands in failures.
    sb.add_validation_rule("Contact", "manual_review",
                           lambda rec: rec.get("Email") == target["email"],
                           "This address needs a manual review", "Email")

    app = make_app(PROFILE, mode="monitor")
    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: "press s to start" in monitor_line(app))
        await pilot.press("s")
        await until(pilot, lambda: "queue 0 ·" in monitor_line(app)
                    and "(e: Failures)" in monitor_line(app), timeout=60)
        assert not [r for r in sb.records("Contact") if r.get("Email") == target["email"]]
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, FailuresScreen)
                    and target["email"] in text_of(app, "#failures-payload"))
        assert "This address needs a manual review" in text_of(app, "#failures-answer")

        sb.remove_validation_rule("Contact", "manual_review")  # the admin fixed the rule
        await pilot.press("R")
        await until(pilot, lambda: "No failed records" in text_of(app, "#failures-message"),
                    timeout=30)

    assert [r for r in sb.records("Contact") if r.get("Email") == target["email"]]
    with Store.for_profile(PROFILE) as store:
        assert store.failure_counts_by_status().get("open", 0) == 0
        assert "retry upsert" in [a.action for a in store.search_audit(target["email"])]


async def test_disconnect_with_removal(org: Any, stripe_sandbox: Any,  # noqa: F811
                                       memory_keyring: Any) -> None:
    sb = org
    connect_stripe(stripe_sandbox)
    assert secrets.status(PROFILE)[SecretKind.STRIPE_API_KEY]
    app = make_app(PROFILE)
    async with app.run_test(size=BIG) as pilot:
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, DisconnectScreen)
                    and ORG in text_of(app, "#disconnect-who"))
        await pilot.press("x")
        await until(pilot, lambda: "Removal deletes" in text_of(app, "#disconnect-preview"))
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmOrgName))
        await pilot.press(*ORG, "enter")
        await until(pilot, lambda: "local state" in text_of(app, "#disconnect-steps"),
                    timeout=60)
        steps = text_of(app, "#disconnect-steps")
        assert "✓ Remove LostChurn metadata: Removed" in steps, steps
        assert "✓ Revoke Salesforce tokens" in steps and "✓ Delete keyring secrets" in steps
        assert "✗" not in steps, steps

    with pytest.raises(KeyError):
        sb.records("LostChurn_Recovery__c")
    # What any other session of the org sees: no LostChurn object or field left.
    with httpx.Client(base_url=f"{sb.url}/services/data/v62.0", timeout=10,
                      verify=ssl.create_default_context(cafile=sb.ca_file),
                      headers={"Authorization": f"Bearer {sb.login()}"}) as rest:
        assert rest.get("/sobjects/LostChurn_Recovery__c/describe").status_code == 404
        for sobject in ("Contact", "Account", "Opportunity"):
            fields = [f["name"] for f in rest.get(f"/sobjects/{sobject}/describe").json()["fields"]]
            assert fields and not [f for f in fields if f.startswith("LostChurn_")], fields
    assert secrets.status(PROFILE) == dict.fromkeys(SecretKind, False)
    assert not [k for k in memory_keyring.store if PROFILE in str(k)]


async def test_first_sync_step_backfills_the_stripe_history(org: Any,  # noqa: F811
                                                            stripe_sandbox: Any) -> None:
    sb, st = org, stripe_sandbox
    connect_stripe(st)
    for step in wizard_service.STEP_IDS[:-1]:
        wizard_service.mark(PROFILE, step)
    customers = {c["id"]: c for c in _all_customers(st)}
    app = make_app(PROFILE, mode="wizard")
    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: isinstance(app.screen, WizardScreen)
                    and "Step 6 of 6" in text_of(app, "#wizard-title"))
        await pilot.press("B")
        await until(pilot, lambda: "Press B to run" in text_of(app, "#backfill-text"), timeout=60)
        forecast = text_of(app, "#backfill-text")
        assert "Forecast (nothing written yet):" in forecast and "  Contact " in forecast
        assert "API budget:" in forecast, forecast
        assert sb.records("Contact") == []
        await pilot.press("B")
        await until(pilot, lambda: "Backfill done" in text_of(app, "#backfill-text"), timeout=60)
        done = text_of(app, "#backfill-text")
        assert "  Contact " in done and " created" in done, done
        for phase in ("read", "derive", "upload"):
            assert app.screen.query_one(f"#backfill-{phase}").display
            assert text_of(app, f"#backfill-line-{phase}").startswith(phase), phase
        assert "100%" in text_of(app, "#backfill-line-upload")
    emails = {r.get("Email") for r in sb.records("Contact")}
    assert {c["email"] for c in customers.values() if c.get("email")} <= emails


def _all_customers(st: Any) -> list[dict[str, Any]]:
    client = stripe_client(st)
    out: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if after:
            params["starting_after"] = after
        page = client.raw_request("get", "/v1/customers", **params).data
        out += [dict(c) for c in page["data"]]
        if not page["has_more"]:
            return out
        after = page["data"][-1]["id"]
