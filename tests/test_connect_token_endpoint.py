"""Token endpoint, device flow and token manager logic against a tiny in-process fake
(httpx.MockTransport). The same paths run against the Salesforce sandbox in
test_connect_salesforce.py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from lc_console import secrets, settings
from lc_console.salesforce import device_flow, token_endpoint, tokens
from lc_console.salesforce.callback_server import (
    AuthorizationDenied,
    AuthorizationFailed,
    CallbackCancelled,
)

LOGIN = "https://login.example.test"
OK_TOKEN = {
    "access_token": "00DXX0000000001!AQ8AQ.access",
    "refresh_token": "5Aep861.refresh",
    "signature": "c2ln",
    "scope": "api refresh_token",
    "instance_url": "https://acme.my.salesforce.com",
    "id": "https://login.salesforce.com/id/00DXX0000000001AAA/005XX0000000001AAA",
    "token_type": "Bearer",
    "issued_at": "1676372418560",
}


def fake(handler: Callable[[dict[str, str]], httpx.Response]) -> tuple[httpx.Client, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/services/oauth2/token"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        seen.append(form)
        return handler(form)

    return httpx.Client(transport=httpx.MockTransport(respond)), seen


def err(error: str, desc: str = "", status: int = 400) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "error_description": desc})


def test_exchange_code_posts_pkce_and_parses_the_response() -> None:
    client, seen = fake(lambda form: httpx.Response(200, json=OK_TOKEN))
    tok = token_endpoint.exchange_code(client, LOGIN, client_id="CID", code="c==",
                                       redirect_uri="http://localhost:1717/OAuth/Callback",
                                       code_verifier="V" * 50)
    assert seen == [{"grant_type": "authorization_code", "code": "c==", "client_id": "CID",
                     "redirect_uri": "http://localhost:1717/OAuth/Callback",
                     "code_verifier": "V" * 50}]
    assert (tok.org_id, tok.user_id) == ("00DXX0000000001AAA", "005XX0000000001AAA")
    assert tok.instance_url == "https://acme.my.salesforce.com"
    assert tok.issued_at_ms == 1676372418560
    assert "5Aep861" not in repr(tok) and "AQ8AQ" not in repr(tok)


@pytest.mark.parametrize(("error", "desc"), [
    ("invalid_grant", "expired authorization code"),
    ("invalid_client_id", "client identifier invalid"),
    ("redirect_uri_mismatch", "redirect_uri must match configuration"),
    ("OAUTH_APP_BLOCKED", "this app is blocked by admin"),
])
def test_token_errors_carry_salesforce_code(error: str, desc: str) -> None:
    client, _ = fake(lambda form: err(error, desc))
    with pytest.raises(token_endpoint.OAuthError) as info:
        token_endpoint.refresh(client, LOGIN, client_id="CID", refresh_token="r")
    assert (info.value.error, info.value.description) == (error, desc)


def test_unreachable_and_non_json() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")

    client = httpx.Client(transport=httpx.MockTransport(boom))
    with pytest.raises(token_endpoint.SalesforceUnreachable, match="tls.ca_bundle"):
        token_endpoint.refresh(client, LOGIN, client_id="CID", refresh_token="r")
    client, _ = fake(lambda form: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(token_endpoint.OAuthError, match="HTTP 502"):
        token_endpoint.refresh(client, LOGIN, client_id="CID", refresh_token="r")


def test_http_instance_url_is_refused() -> None:
    client, _ = fake(lambda form: httpx.Response(200, json={**OK_TOKEN, "instance_url": "http://x"}))
    with pytest.raises(token_endpoint.OAuthError, match="not https"):
        token_endpoint.refresh(client, LOGIN, client_id="CID", refresh_token="r")


# --- device flow ---------------------------------------------------------------------------------


def device_server(script: list[httpx.Response]) -> tuple[httpx.Client, list[dict[str, str]]]:
    answers = iter(script)

    def handler(form: dict[str, str]) -> httpx.Response:
        if form.get("response_type") == "device_code":
            return httpx.Response(200, json={
                "device_code": "DEV", "user_code": "ABCD-1234", "interval": 5,
                "verification_uri": "https://login.example.test/setup/connect"})
        assert form == {"grant_type": "device", "client_id": "CID", "code": "DEV"}
        return next(answers)

    return fake(handler)


def test_device_flow_pending_slow_down_then_success() -> None:
    client, seen = device_server([err("authorization_pending"), err("slow_down"),
                                  err("authorization_pending"), httpx.Response(200, json=OK_TOKEN)])
    code = device_flow.start(client, LOGIN, "CID")
    assert seen[0] == {"response_type": "device_code", "client_id": "CID", "scope": "api refresh_token"}
    assert (code.user_code, code.verification_uri, code.interval) == (
        "ABCD-1234", "https://login.example.test/setup/connect", 5)
    slept: list[float] = []
    tok = device_flow.poll(client, LOGIN, "CID", code, sleep=slept.append)
    assert tok.refresh_token == "5Aep861.refresh"
    assert slept == [5, 5, 10, 10]  # slow_down adds 5 seconds, for good


def test_device_flow_denied_expired_and_errors() -> None:
    client, _ = device_server([err("authorization_pending"), err("access_denied", "end-user denied")])
    code = device_flow.start(client, LOGIN, "CID")
    with pytest.raises(AuthorizationDenied):
        device_flow.poll(client, LOGIN, "CID", code, sleep=lambda s: None)

    client, _ = device_server([err("expired_token")])
    with pytest.raises(device_flow.DeviceCodeExpired):
        device_flow.poll(client, LOGIN, "CID", device_flow.start(client, LOGIN, "CID"),
                         sleep=lambda s: None)

    client, _ = device_server([err("invalid_grant", "expired authorization code")])
    with pytest.raises(device_flow.DeviceCodeExpired):
        device_flow.poll(client, LOGIN, "CID", device_flow.start(client, LOGIN, "CID"),
                         sleep=lambda s: None)

    client, _ = device_server([err("invalid_client_id", "client identifier invalid")])
    with pytest.raises(AuthorizationFailed, match="client identifier invalid"):
        device_flow.poll(client, LOGIN, "CID", device_flow.start(client, LOGIN, "CID"),
                         sleep=lambda s: None)


def test_device_flow_local_deadline_and_cancel() -> None:
    client, _ = device_server([err("authorization_pending")] * 200)
    code = device_flow.start(client, LOGIN, "CID")
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with pytest.raises(device_flow.DeviceCodeExpired):
        device_flow.poll(client, LOGIN, "CID", code, sleep=sleep, clock=lambda: now[0])
    assert now[0] == pytest.approx(600, abs=5)

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CallbackCancelled):
        device_flow.poll(client, LOGIN, "CID", code, cancel=cancel)


# --- token manager (refresh logic; the simple-salesforce side runs against the sandbox) -------


def connected_manager(handler: Callable[[dict[str, str]], httpx.Response]) -> tuple[tokens.TokenManager, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []

    def factory() -> httpx.Client:
        client, log = fake(handler)
        return httpx.Client(transport=httpx.MockTransport(
            lambda r: (seen.append({k: v[0] for k, v in parse_qs(r.content.decode()).items()}),
                       client.send(r))[1]))

    tm = tokens.TokenManager("default", http_client_factory=factory)
    tm.store(token_endpoint.parse_token_response(OK_TOKEN), environment="custom",
             login_url=LOGIN, client_id="CID")
    return tm, seen


def test_store_puts_tokens_in_keyring_and_facts_in_settings(memory_keyring: Any) -> None:
    tm, _ = connected_manager(lambda f: httpx.Response(200, json=OK_TOKEN))
    assert secrets.get("default", secrets.SecretKind.SALESFORCE_REFRESH_TOKEN) == "5Aep861.refresh"
    assert secrets.get("default", secrets.SecretKind.SALESFORCE_ACCESS_TOKEN) == OK_TOKEN["access_token"]
    s = settings.load("default").salesforce
    assert (s.instance_url, s.org_id, s.user_id, s.login_url, s.client_id, s.environment) == (
        "https://acme.my.salesforce.com", "00DXX0000000001AAA", "005XX0000000001AAA", LOGIN,
        "CID", "custom")
    from lc_console import paths
    text = paths.config_file("default").read_text()
    assert "5Aep861" not in text and "AQ8AQ" not in text


def test_store_refuses_a_grant_without_refresh_token() -> None:
    tm = tokens.TokenManager("default")
    with pytest.raises(token_endpoint.OAuthError, match="refresh_token"):
        tm.store(token_endpoint.parse_token_response({**OK_TOKEN, "refresh_token": ""}),
                 environment="production", login_url=LOGIN, client_id="CID")
    assert secrets.get("default", secrets.SecretKind.SALESFORCE_ACCESS_TOKEN) is None


def test_refresh_once_for_concurrent_stale_callers() -> None:
    fresh = {**OK_TOKEN, "access_token": "00DXX!fresh"}
    fresh.pop("refresh_token")
    tm, seen = connected_manager(lambda f: httpx.Response(200, json=fresh))
    stale = tm.access_token()
    results = []
    threads = [threading.Thread(target=lambda: results.append(tm.refresh(stale=stale))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["00DXX!fresh"] * 5
    assert len(seen) == 1
    assert seen[0] == {"grant_type": "refresh_token", "refresh_token": "5Aep861.refresh",
                             "client_id": "CID"}
    # the refresh response has no refresh token: the stored one is kept
    assert secrets.get("default", secrets.SecretKind.SALESFORCE_REFRESH_TOKEN) == "5Aep861.refresh"
    assert secrets.get("default", secrets.SecretKind.SALESFORCE_ACCESS_TOKEN) == "00DXX!fresh"


def test_revoked_refresh_token_marks_the_connection_expired() -> None:
    tm, _ = connected_manager(lambda f: err("invalid_grant", "expired access/refresh token"))
    with pytest.raises(tokens.ConnectionExpired, match="expired access/refresh token"):
        tm.refresh(stale=tm.access_token())
    assert settings.load("default").salesforce.connection_expired is True
    assert tm.info().expired
    # later calls fail fast without asking Salesforce again
    fresh_manager = tokens.TokenManager("default")
    with pytest.raises(tokens.ConnectionExpired):
        fresh_manager.refresh(stale=None)


def test_forget_clears_keyring_and_settings() -> None:
    tm, _ = connected_manager(lambda f: httpx.Response(200, json=OK_TOKEN))
    tm.forget()
    assert secrets.status("default")[secrets.SecretKind.SALESFORCE_REFRESH_TOKEN] is False
    assert settings.load("default").salesforce.instance_url == ""
    with pytest.raises(tokens.NotConnected):
        tokens.TokenManager("default").access_token()


def test_is_invalid_session() -> None:
    assert tokens.is_invalid_session(401, b'[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]')
    assert not tokens.is_invalid_session(401, b'{"error":"x"}')
    assert not tokens.is_invalid_session(403, b'[{"errorCode":"INVALID_SESSION_ID"}]')
    assert tokens.is_invalid_session(500, "<soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode></soapenv:Fault>")
