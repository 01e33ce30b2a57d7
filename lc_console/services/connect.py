"""Connecting Salesforce and Stripe: the one facade the CLI and the TUI both call.

Every failure reaches the faces as ConnectError carrying a UserMessage built by
describe_error(), the single error-to-message mapping, so `lc-console connect` and the
console's screens say the same words for the same outcome. Nothing is stored unless the whole
step succeeded: tokens go to the keyring only after the org answered, a Stripe key only after
every read permission checked out.
"""

from __future__ import annotations

import html
import re
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import httpx
from simple_salesforce.exceptions import SalesforceError

from lc_console import net, secrets, settings
from lc_console.salesforce import callback_server as cb
from lc_console.salesforce import device_flow, oauth, org_info, token_endpoint, tokens
from lc_console.salesforce.org_info import OrgInfo
from lc_console.stripe import keys as stripe_keys

# --- messages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserMessage:
    title: str
    detail: str = ""
    fix: str = ""
    severity: str = "error"  # "error" | "warning" | "information" (app.notify severities)
    # A free callback port to offer when the chosen one is taken (PortInUse).
    suggested_port: int | None = None

    def text(self) -> str:
        lines = [self.title]
        if self.detail:
            lines.append(self.detail)
        if self.fix:
            lines.append(f"What to do: {self.fix}")
        return "\n".join(lines)


class ConnectError(Exception):
    def __init__(self, message: UserMessage):
        super().__init__(message.text())
        self.message = message


NOTHING_STORED = "Nothing was stored."

CONNECTED_APP_HELP = ("see 'Create the connected app' in the README for the exact clicks in "
                      "Salesforce Setup")


def _oauth_message(error: str, description: str, *, redirect_uri: str = "",
                   client_id: str = "") -> UserMessage:
    said = f"Salesforce said: {error}" + (f" ({description})" if description else "") + "."
    low = f"{error} {description}".lower()
    if error in ("invalid_client_id", "invalid_client") or "client identifier invalid" in low:
        return UserMessage(
            "Salesforce does not know this client id.",
            f"{said} {NOTHING_STORED}",
            "Copy the Consumer Key again (Setup > App Manager > your app > View > Manage "
            "Consumer Details) and pass it with --client-id. A new connected app takes up to "
            "10 minutes to work, and a connected app of one org only signs in to orgs where it "
            f"is available; {CONNECTED_APP_HELP}.")
    if error == "redirect_uri_mismatch" or "redirect_uri" in low:
        where = f" {redirect_uri}" if redirect_uri else ""
        return UserMessage(
            f"The connected app does not list the callback URL{where}.",
            f"{said} {NOTHING_STORED}",
            f"In Setup > App Manager > your app > Edit, add{where} to Callback URL (one per "
            "line, for each port in salesforce.callback_ports), save, wait a few minutes, "
            "and connect again.")
    if (error in ("OAUTH_APP_BLOCKED", "OAUTH_APP_ACCESS_DENIED", "invalid_app_access",
                  "OAUTH_EC_APP_NOT_FOUND")
            or "blocked" in low or "not admin approved" in low or "uninstalled" in low):
        return UserMessage(
            "The org does not let this connected app sign in.",
            f"{said} {NOTHING_STORED}",
            "In Setup > Connected Apps OAuth Usage, install the app (or use one created in "
            "this org); in Manage Connected Apps > your app > Edit Policies, set Permitted "
            "Users to 'All users may self-authorize' or pre-approve your profile or a "
            "permission set. Since 2025 uninstalled apps need the 'Approve Uninstalled "
            "Connected Apps' permission.")
    if error == "invalid_scope":
        return UserMessage(
            "The connected app does not offer the scopes the console needs.",
            f"{said} {NOTHING_STORED}",
            "In Setup > App Manager > your app > Edit, add 'Manage user data via APIs (api)' "
            "and 'Perform requests at any time (refresh_token, offline_access)' to Selected "
            "OAuth Scopes.")
    if error == "unsupported_response_type" or error == "unsupported_grant_type":
        return UserMessage(
            "The connected app does not allow this sign-in flow.",
            f"{said} {NOTHING_STORED}",
            "For --device, tick 'Enable for Device Flow' on the connected app; otherwise "
            "check 'Require Proof Key for Code Exchange (PKCE)' is allowed and connect again.")
    if error in ("inactive_user", "inactive_org"):
        who = "user" if error == "inactive_user" else "org"
        return UserMessage(f"Salesforce says the {who} is inactive.", f"{said} {NOTHING_STORED}",
                           "Sign in with an active user of an active org.")
    if error == "invalid_grant":
        return UserMessage(
            "Salesforce refused to finish the sign-in.",
            f"{said} {NOTHING_STORED}",
            "Connect again; finish the browser step in one go (an authorization code works "
            "once and only for a few minutes).")
    if error == "invalid_request" and "verifier" in low:
        return UserMessage("Salesforce rejected the PKCE proof of this sign-in.",
                           f"{said} {NOTHING_STORED}", "Connect again.")
    if error == "no_refresh_token":
        return UserMessage("Salesforce issued no refresh token.", f"{description} {NOTHING_STORED}",
                           "Add 'Perform requests at any time (refresh_token, offline_access)' "
                           "to the connected app's Selected OAuth Scopes, then connect again.")
    return UserMessage("Salesforce refused the sign-in.", f"{said} {NOTHING_STORED}",
                       "Check the connected app's settings; " + CONNECTED_APP_HELP + ".")


def describe_error(exc: BaseException, *, redirect_uri: str = "") -> UserMessage:
    """The one mapping from what went wrong to what the admin reads, in both faces."""
    if isinstance(exc, ConnectError):
        return exc.message
    if isinstance(exc, oauth.LoginUrlError):
        return UserMessage("That login URL cannot be used.", str(exc),
                           f"Use --env {exc.suggestion}" if exc.suggestion else
                           "Use --env production, --env sandbox or your My Domain URL.")
    if isinstance(exc, cb.PortInUse):
        if exc.alternatives:
            fix = (f"Use port {exc.alternatives[0]} (--port {exc.alternatives[0]}; its callback "
                   f"URL {oauth.redirect_uri(exc.alternatives[0])} must be on the connected "
                   "app), or stop that program.")
        else:
            fix = ("Stop that program, or register another callback URL on the connected app "
                   "and add its port with `lc-console config set salesforce.callback_ports "
                   "1717,1718,1719,<port>`.")
        return UserMessage(f"Port {exc.port} is in use by {exc.holder.describe() if exc.holder else 'another program'}.",
                           "The console receives Salesforce's answer on this port, so it must "
                           "be free before the browser opens.", fix,
                           suggested_port=exc.alternatives[0] if exc.alternatives else None)
    if isinstance(exc, cb.CallbackTimeout):
        minutes = exc.seconds / 60
        span = f"{minutes:g} minutes" if minutes >= 1 else f"{exc.seconds:g} seconds"
        return UserMessage(f"No answer from the browser within {span}.",
                           f"The sign-in was not finished in time. {NOTHING_STORED}",
                           "Connect again and finish the sign-in in the browser; on a machine "
                           "without a browser use --device.")
    if isinstance(exc, cb.CallbackCancelled):
        return UserMessage("Sign-in cancelled.", NOTHING_STORED, "", severity="warning")
    if isinstance(exc, cb.AuthorizationDenied):
        return UserMessage("You pressed Deny in Salesforce.",
                           f"lc-console is not connected. {NOTHING_STORED}",
                           "Connect again and press Allow to let lc-console use the org.",
                           severity="warning")
    if isinstance(exc, cb.StateMismatch):
        return UserMessage("The browser's answer belongs to another sign-in attempt.",
                           "Its state value did not match this attempt, so it was rejected "
                           f"(this protects against forged sign-ins). {NOTHING_STORED}",
                           "Connect again and use only the newest browser tab.")
    if isinstance(exc, device_flow.DeviceCodeExpired):
        return UserMessage("The device code expired before it was approved.", NOTHING_STORED,
                           "Connect again with --device and enter the code promptly.")
    if isinstance(exc, cb.AuthorizationFailed):
        return _oauth_message(exc.error, exc.description, redirect_uri=redirect_uri)
    if isinstance(exc, token_endpoint.OAuthError):
        return _oauth_message(exc.error, exc.description, redirect_uri=redirect_uri)
    if isinstance(exc, token_endpoint.SalesforceUnreachable):
        return UserMessage(f"Could not reach {exc.url}.", f"{exc.reason}. {NOTHING_STORED}",
                           "Check the login URL (--env), the network or proxy, and "
                           "tls.ca_bundle if your company inspects TLS.")
    if isinstance(exc, tokens.ConnectionExpired):
        return UserMessage("The Salesforce connection has expired.",
                           "Salesforce refused the saved refresh token (revoked in Setup, "
                           "expired by the app's refresh token policy, or replaced by newer "
                           f"sign-ins): {exc}.",
                           "Reconnect with `lc-console connect salesforce` (or R in the "
                           "console). The sync keeps its queue and resumes after reconnecting.")
    if isinstance(exc, tokens.NotConnected):
        # The exception's default text says what the title already says.
        detail = "" if str(exc).rstrip(".") == "Salesforce is not connected" else str(exc)
        return UserMessage("Salesforce is not connected.", detail,
                           "Run `lc-console connect salesforce`.")
    if isinstance(exc, secrets.KeyringUnavailable):
        return UserMessage("The OS keyring is not available.", f"{exc.what} {NOTHING_STORED}",
                           secrets.HOW_TO_FIX)
    if isinstance(exc, settings.SettingsError):
        return UserMessage("The settings file cannot be used.", str(exc))
    if isinstance(exc, stripe_keys.KeyRefused):
        return UserMessage("That key cannot be used.", f"{exc} {NOTHING_STORED}")
    if isinstance(exc, stripe_keys.KeyRejected):
        return UserMessage("Stripe did not accept the key." if exc.reason in ("invalid", "expired")
                           else "Could not check the key with Stripe.",
                           f"{exc} {NOTHING_STORED}")
    if isinstance(exc, SalesforceError):
        content = exc.content
        code = msg = ""
        if isinstance(content, list) and content and isinstance(content[0], dict):
            code = str(content[0].get("errorCode") or "")
            msg = str(content[0].get("message") or "")
        if code in ("API_CURRENTLY_DISABLED", "API_DISABLED_FOR_ORG"):
            return UserMessage("The user or org may not use the API.", f"{code}: {msg}",
                               "Give the user the 'API Enabled' permission (profile or "
                               "permission set); Professional Edition orgs need API access "
                               "added by Salesforce.")
        return UserMessage("Salesforce refused a request.",
                           f"HTTP {exc.status} {code}: {msg}".strip(),
                           "Check the user's permissions in the org, then try again.")
    if isinstance(exc, httpx.HTTPError | OSError):
        return UserMessage("A network error stopped the connection.", f"{type(exc).__name__}: {exc}",
                           "Check the network and try again.")
    return UserMessage("Something unexpected went wrong.", f"{type(exc).__name__}: {exc}",
                       "Try again; if it persists, report it with the log file "
                       "(`lc-console doctor` shows where it is).")


# --- shared pure helpers --------------------------------------------------------------------


def mode_mismatch(is_sandbox: bool | None, stripe_mode: str | None) -> str:
    """The Production-with-test-key / Sandbox-with-live-key warning, or ''."""
    if is_sandbox is None or not stripe_mode:
        return ""
    if not is_sandbox and stripe_mode == "test":
        return ("A Production org with a Stripe test key: test data would reach your "
                "production CRM.")
    if is_sandbox and stripe_mode == "live":
        return ("A Sandbox org with a live Stripe key: real customers' data would go to a "
                "sandbox.")
    return ""


def _stored_stripe_mode(profile: str) -> str | None:
    cfg = settings.load(profile)
    try:
        has_key = secrets.get(profile, secrets.SecretKind.STRIPE_API_KEY) is not None
    except secrets.KeyringUnavailable:
        has_key = bool(cfg.stripe.account_id)
    return cfg.stripe.mode if has_key else None


def _stored_org_is_sandbox(profile: str) -> bool | None:
    cfg = settings.load(profile)
    return cfg.salesforce.is_sandbox if cfg.salesforce.org_id else None


# --- Salesforce -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesforcePlan:
    profile: str
    target: oauth.LoginTarget
    client_id: str
    port: int
    timeout: float
    alternatives: tuple[int, ...]


def plan_salesforce(profile: str, *, env: str | None = None, client_id: str | None = None,
                    port: int | None = None, timeout: float | None = None) -> SalesforcePlan:
    """Check the inputs (falling back to settings) before anything touches the network."""
    try:
        cfg = settings.load(profile)
        sf = cfg.salesforce
        if env:
            target = oauth.resolve_login(env)
        elif sf.environment == "custom":
            target = oauth.resolve_login(sf.login_url)
        else:
            target = oauth.resolve_login(sf.environment)
    except (oauth.LoginUrlError, settings.SettingsError) as exc:
        raise ConnectError(describe_error(exc)) from None
    cid = (client_id if client_id is not None else sf.client_id).strip()
    if not cid:
        raise ConnectError(UserMessage(
            "No client id.",
            "Salesforce only signs in through a connected app that your org allows, so the "
            "console needs the Consumer Key of your own connected app.",
            f"Create it ({CONNECTED_APP_HELP}), then pass --client-id <Consumer Key> or run "
            "`lc-console config set salesforce.client_id <Consumer Key>`."))
    if any(ch.isspace() for ch in cid) or len(cid) > 256:
        raise ConnectError(UserMessage("That client id is not valid.",
                                       "A Consumer Key is one word with no spaces.",
                                       "Copy it again from Manage Consumer Details."))
    chosen = port if port is not None else sf.callback_port
    if not 1024 <= chosen <= 65535:
        raise ConnectError(UserMessage(f"Port {chosen} cannot be used.",
                                       "The callback port must be between 1024 and 65535.",
                                       "Use one of salesforce.callback_ports (default 1717)."))
    return SalesforcePlan(profile=profile, target=target, client_id=cid, port=chosen,
                          timeout=float(timeout if timeout is not None else sf.oauth_timeout_seconds),
                          alternatives=tuple(sf.callback_ports))


def permission_text(p: org_info.PermissionCheck) -> str:
    if p.granted:
        return f"✓ {p.label}"
    if p.granted is False:
        return f"✗ {p.label}: missing"
    return f"? {p.label}: not checked"


@dataclass(frozen=True)
class SalesforceConnected:
    environment: str  # label, e.g. "Sandbox (https://test.salesforce.com)"
    instance_url: str
    org: OrgInfo
    warnings: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        """The summary both faces show, in order."""
        o = self.org
        api = f"v{o.api_version}" + (f" (org offers up to v{o.latest_api_version})"
                                     if o.latest_api_version else "")
        return [
            ("Org", f"{o.org_name} ({o.org_id})"),
            ("Edition", o.edition or "unknown"),
            ("Type", o.kind),
            ("User", f"{o.user_display_name} <{o.username}>" if o.user_display_name else o.username),
            ("Instance", self.instance_url),
            ("API version", api),
            ("API usage", o.api_usage_text()),
        ] + [("Permissions" if i == 0 else "", permission_text(p))
             for i, p in enumerate(o.permissions)]


def _finish_salesforce(plan: SalesforcePlan, tok: token_endpoint.TokenResponse) -> SalesforceConnected:
    """Store the grant, ask the org who and what it is; undo everything if the org fails us."""
    manager = tokens.manager_for(plan.profile)
    try:
        manager.store(tok, environment=plan.target.environment, login_url=plan.target.login_url,
                      client_id=plan.client_id)
    except Exception as exc:
        # Not stored (no keyring, no refresh token): don't leave a live grant behind.
        try:
            with _http(plan.profile) as client:
                token_endpoint.revoke(client, plan.target.login_url,
                                      tok.refresh_token or tok.access_token)
        except Exception:
            pass
        raise ConnectError(describe_error(exc)) from None
    try:
        client = manager.salesforce()
        cfg = settings.load(plan.profile)
        info = org_info.collect(client, tok.user_id, cfg.salesforce.api_version,
                                call=lambda fn: manager.call(fn, client))
        manager.remember_org(org_name=info.org_name, is_sandbox=info.is_sandbox,
                             username=info.username)
        cfg = settings.load(plan.profile)
        cfg.salesforce.callback_port = plan.port
        settings.save(plan.profile, cfg)
    except BaseException as exc:
        # A grant we cannot use must not linger: revoke it at Salesforce and forget it here.
        try:
            manager.revoke()
        except Exception:  # best effort: the org may be unreachable right now
            pass
        manager.forget()
        if isinstance(exc, Exception):
            raise ConnectError(describe_error(exc)) from None
        raise
    warnings = list(info.warnings)
    for p in info.missing_permissions:
        warnings.append(f"{p.label} is missing: {p.detail}")
    mismatch = mode_mismatch(info.is_sandbox, _stored_stripe_mode(plan.profile))
    if mismatch:
        warnings.append(mismatch)
    return SalesforceConnected(environment=plan.target.label, instance_url=tok.instance_url,
                               org=info, warnings=warnings)


def _http(profile: str) -> httpx.Client:
    return net.http_client(settings.load(profile).tls.ca_bundle)


_ERROR_IN_PAGE = re.compile(r"error=([A-Za-z_-]+)(?:&error_description=([^<&\n]*))?")


def preflight_authorize(profile: str, url: str) -> None:
    """Ask the authorize endpoint before the browser does: an unknown client id, a callback
    URL missing from the app or a blocked app show up as an error redirect, which the console
    can explain. Salesforce shows these on its own page and never calls the callback."""
    with _http(profile) as client:
        try:
            resp = client.get(url, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise token_endpoint.SalesforceUnreachable(
                url.split("/services/", 1)[0],
                token_endpoint._describe_transport_error(exc)) from None
    location = resp.headers.get("Location", "")
    error = description = ""
    if resp.is_redirect and location:
        q = httpx.URL(location).params
        error, description = q.get("error", ""), q.get("error_description", "")
    elif resp.status_code >= 400:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if isinstance(body, dict):
            error = str(body.get("error") or "")
            description = str(body.get("error_description") or "")
        if not error:
            # Salesforce's error page spells it out as text:
            # "error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match..."
            text = html.unescape(resp.text)
            m = _ERROR_IN_PAGE.search(text)
            if m:
                error = m.group(1)
                description = unquote_plus(m.group(2) or "").strip()
        error = error or f"http_{resp.status_code}"
    if error and error not in ("access_denied", "login_required"):
        raise cb.AuthorizationFailed(error, description)


class WebLogin:
    """A started browser sign-in: the callback server is listening, the URL is ready."""

    def __init__(self, plan: SalesforcePlan):
        self.plan = plan
        self.state = oauth.new_state()
        self._pkce = oauth.new_pkce()
        self.server = cb.CallbackServer(plan.port, self.state, timeout=plan.timeout,
                                        alternatives=plan.alternatives)
        self.redirect_uri = self.server.redirect_uri
        self.authorize_url = oauth.authorize_url(plan.target.login_url, plan.client_id,
                                                 self.redirect_uri, self.state, self._pkce)
        self._cancel = threading.Event()

    def open_browser(self) -> bool:
        try:
            return bool(webbrowser.open(self.authorize_url, new=1))
        except webbrowser.Error:
            return False

    def cancel(self) -> None:
        self._cancel.set()
        self.server.cancel()

    def wait(self) -> SalesforceConnected:
        """Block until the browser answers (or timeout/cancel); then finish the connection."""
        try:
            code = self.server.wait(self._cancel)
            with _http(self.plan.profile) as client:
                tok = token_endpoint.exchange_code(
                    client, self.plan.target.login_url, client_id=self.plan.client_id,
                    code=code, redirect_uri=self.redirect_uri, code_verifier=self._pkce.verifier)
        except ConnectError:
            raise
        except Exception as exc:
            raise ConnectError(describe_error(exc, redirect_uri=self.redirect_uri)) from None
        finally:
            self.server.close()
        return _finish_salesforce(self.plan, tok)


def start_web_login(plan: SalesforcePlan, *, preflight: bool = True) -> WebLogin:
    """Bind the callback port and check the authorize request; raises ConnectError."""
    login = WebLogin(plan)
    try:
        login.server.start()
        if preflight:
            preflight_authorize(plan.profile, login.authorize_url)
    except Exception as exc:
        login.server.close()
        raise ConnectError(describe_error(exc, redirect_uri=login.redirect_uri)) from None
    return login


class DeviceLogin:
    def __init__(self, plan: SalesforcePlan, code: device_flow.DeviceCode):
        self.plan = plan
        self.code = code
        self.user_code = code.user_code
        self.verification_uri = code.verification_uri
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, on_wait: Callable[[float], None] | None = None) -> SalesforceConnected:
        try:
            with _http(self.plan.profile) as client:
                tok = device_flow.poll(client, self.plan.target.login_url, self.plan.client_id,
                                       self.code, cancel=self._cancel, on_wait=on_wait)
        except Exception as exc:
            raise ConnectError(describe_error(exc)) from None
        return _finish_salesforce(self.plan, tok)


def start_device_login(plan: SalesforcePlan) -> DeviceLogin:
    try:
        with _http(plan.profile) as client:
            code = device_flow.start(client, plan.target.login_url, plan.client_id)
    except Exception as exc:
        raise ConnectError(describe_error(exc)) from None
    return DeviceLogin(plan, code)


# --- Stripe ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StripeConnected:
    check: stripe_keys.KeyCheck
    stored: bool
    warnings: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        c = self.check
        account = f"{c.account_name} ({c.account_id})" if c.account_name else (c.account_id or "unknown")
        return [("Account", account), ("Mode", c.mode), ("Key", str(c.kind))]

    def missing_message(self) -> UserMessage:
        names = ", ".join(f"{p.permission} ({p.api_name})" for p in self.check.missing)
        return UserMessage(
            "The key lacks read permissions the sync needs.",
            f"Missing: {names}. {NOTHING_STORED}",
            "In the Stripe Dashboard, Developers > API keys, edit the restricted key and set "
            "each of these to Read, save, then connect again with the same key.")


def connect_stripe(profile: str, key: str) -> StripeConnected:
    """Check the key against the account; store it only when every needed read works."""
    key = key.strip()
    try:
        cfg = settings.load(profile)
        check = stripe_keys.check_key(key, api_base=cfg.stripe.api_base,
                                      ca_bundle=cfg.tls.ca_bundle)
    except Exception as exc:
        raise ConnectError(describe_error(exc)) from None
    warnings = list(check.warnings)
    if not check.ok:
        return StripeConnected(check=check, stored=False, warnings=warnings)
    try:
        previous = cfg.stripe.account_id
        secrets.put(profile, secrets.SecretKind.STRIPE_API_KEY, key)
        cfg = settings.load(profile)
        cfg.stripe.mode = check.mode
        cfg.stripe.account_id = check.account_id
        cfg.stripe.account_name = check.account_name
        settings.save(profile, cfg)
    except Exception as exc:
        raise ConnectError(describe_error(exc)) from None
    if previous and check.account_id and previous != check.account_id:
        warnings.append(f"This key opens {check.account_id}; the console was connected to "
                        f"{previous} before.")
    mismatch = mode_mismatch(_stored_org_is_sandbox(profile), check.mode)
    if mismatch:
        warnings.append(mismatch)
    return StripeConnected(check=check, stored=True, warnings=warnings)


# --- doctor checks ----------------------------------------------------------------------------


def callback_port_check(profile: str) -> Any:
    """Doctor: is the callback port free (and if not, who holds it and what to use)?"""
    from lc_console.salesforce import ports
    from lc_console.services.doctor import Check

    sf = settings.load(profile).salesforce
    port = sf.callback_port
    if ports.is_free(port):
        return Check("callback port", True,
                     f"{port} is free ({oauth.redirect_uri(port)} receives the sign-in)")
    exc = cb.PortInUse(port, ports.find_port_holder(port),
                       ports.free_alternatives(sf.callback_ports, port))
    msg = describe_error(exc)
    return Check("callback port", False, msg.title, msg.fix)


def _salesforce_alive(profile: str) -> tuple[bool, str, str]:
    cfg = settings.load(profile)
    if not cfg.salesforce.org_id:
        return True, "Salesforce not connected yet", ""
    manager = tokens.manager_for(profile)
    try:
        client = manager.salesforce()
        manager.call(lambda c: c.query("SELECT Id FROM Organization"), client)
    except Exception as exc:
        msg = describe_error(exc)
        return False, f"Salesforce: {msg.title}", msg.fix
    usage = client.api_usage.get("api-usage")
    extra = f", {usage.used:,}/{usage.total:,} API requests today" if usage else ""
    name = cfg.salesforce.org_name or cfg.salesforce.org_id
    return True, f"Salesforce {name} answers{extra}", ""


def _stripe_alive(profile: str) -> tuple[bool, str, str]:
    import stripe

    from lc_console.stripe.client import make_client

    cfg = settings.load(profile)
    try:
        key = secrets.get(profile, secrets.SecretKind.STRIPE_API_KEY)
    except secrets.KeyringUnavailable as exc:
        return False, "Stripe: keyring unavailable", describe_error(exc).fix
    if not key:
        return True, "Stripe not connected yet", ""
    client = make_client(key, api_base=cfg.stripe.api_base, ca_bundle=cfg.tls.ca_bundle,
                         max_network_retries=0)
    try:
        client.v1.events.list(params={"limit": 1})
    except stripe.StripeError as exc:
        msg = describe_error(stripe_keys._rejection(exc, key, cfg.stripe.api_base))
        return False, f"Stripe: {msg.title}", msg.detail.replace(f" {NOTHING_STORED}", "")
    return True, f"Stripe {cfg.stripe.account_name or cfg.stripe.account_id} answers", ""


def connections_check(profile: str) -> Any:
    """Doctor: do the stored connections still work? (One cheap read each.)"""
    from lc_console.services.doctor import Check

    try:
        secrets.status(profile)
    except secrets.KeyringUnavailable:
        return Check("connections", True,
                     "not checked: the keyring is unavailable (see the keyring check)",
                     level="info")
    results = [_salesforce_alive(profile), _stripe_alive(profile)]
    ok = all(r[0] for r in results)
    return Check("connections", ok, "; ".join(r[1] for r in results),
                 " ".join(r[2] for r in results if r[2]))
