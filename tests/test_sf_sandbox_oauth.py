"""OAuth 2.0 and logins of the Salesforce sandbox, over raw httpx (the browser test with real
Chromium lives elsewhere): web-server flow with PKCE and its documented errors, refresh, token
expiry, revoke, device flow, password grant, SOAP login, identity URL and userinfo."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import SalesforceLogin

CALLBACK = "http://localhost:1717/OAuth/Callback"


@pytest.fixture
def client(salesforce_sandbox) -> Iterator[httpx.Client]:
    ctx = ssl.create_default_context(cafile=salesforce_sandbox.ca_file)
    with httpx.Client(base_url=salesforce_sandbox.url, verify=ctx) as c:
        yield c


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(96)).decode().rstrip("=")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def authorize(client: httpx.Client, sb: Any, challenge: str | None = None, user: Any = None,
              redirect_uri: str = CALLBACK, state: str = "xyz<&>", action: str = "Allow",
              scope: str = "api refresh_token") -> httpx.Response:  # fmt: skip
    params = {"response_type": "code", "client_id": sb.client_id, "redirect_uri": redirect_uri,
              "state": state, "prompt": "login", "scope": scope}  # fmt: skip
    if challenge:
        params["code_challenge"] = challenge
    page = client.get("/services/oauth2/authorize", params=params)
    assert page.status_code == 200, page.text
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    user = user or sb.admin
    return client.post("/services/oauth2/authorize", data={
        "request_id": request_id, "username": user.username, "password": user.password, "action": action})  # fmt: skip


def callback_params(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code == 302, resp.text
    loc = resp.headers["Location"]
    assert loc.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}


def exchange(client: httpx.Client, sb: Any, code: str, verifier: str | None, **extra: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "client_id": sb.client_id,
            "redirect_uri": CALLBACK, **extra}  # fmt: skip
    if verifier is not None:
        data["code_verifier"] = verifier
    return client.post("/services/oauth2/token", data=data)


# -- the authorize page -----------------------------------------------------------------------------


def test_login_page_is_a_real_form(client, salesforce_sandbox) -> None:
    page = client.get("/services/oauth2/authorize", params={
        "response_type": "code", "client_id": salesforce_sandbox.client_id, "redirect_uri": CALLBACK,
        "state": '"><script>alert(1)</script>', "prompt": "login"})  # fmt: skip
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<input type="text" id="username" name="username"' in html
    assert '<input type="password" id="password" name="password"' in html
    assert 'value="Allow"' in html and 'value="Deny"' in html
    assert "<script>" not in html


def test_web_server_flow_with_pkce(client, salesforce_sandbox) -> None:
    verifier, challenge = pkce()
    params = callback_params(authorize(client, salesforce_sandbox, challenge))
    assert params["state"] == "xyz<&>"
    r = exchange(client, salesforce_sandbox, params["code"], verifier)
    assert r.status_code == 200
    tok = r.json()
    assert set(tok) == {"access_token", "refresh_token", "signature", "scope", "instance_url", "id",
                        "token_type", "issued_at"}  # fmt: skip
    assert "expires_in" not in tok
    assert tok["token_type"] == "Bearer" and tok["scope"] == "api refresh_token"
    assert re.fullmatch(r"\d{13}", tok["issued_at"])
    assert tok["access_token"].startswith(salesforce_sandbox.org.org_id[:15] + "!")
    assert tok["instance_url"] == salesforce_sandbox.url
    org_id, user_id = tok["id"].rsplit("/", 2)[-2:]
    assert (org_id, user_id) == (salesforce_sandbox.org.org_id, salesforce_sandbox.admin.id)
    ident = client.get(urlsplit(tok["id"]).path, headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert ident.json()["username"] == salesforce_sandbox.admin.username
    info = client.get("/services/oauth2/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert info.json()["user_id"] == salesforce_sandbox.admin.id
    assert client.get("/services/oauth2/userinfo").status_code == 403


def test_pkce_errors(client, salesforce_sandbox) -> None:
    verifier, challenge = pkce()
    code = callback_params(authorize(client, salesforce_sandbox, challenge))["code"]
    wrong = exchange(client, salesforce_sandbox, code, "x" * 64)
    assert (wrong.status_code, wrong.json()) == (400, {"error": "invalid_request",
                                                       "error_description": "invalid code verifier"})  # fmt: skip
    code = callback_params(authorize(client, salesforce_sandbox, challenge))["code"]
    missing = exchange(client, salesforce_sandbox, code, None)
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_grant")


def test_codes_are_single_use_and_expire(client, salesforce_sandbox) -> None:
    verifier, challenge = pkce()
    code = callback_params(authorize(client, salesforce_sandbox, challenge))["code"]
    assert exchange(client, salesforce_sandbox, code, verifier).status_code == 200
    again = exchange(client, salesforce_sandbox, code, verifier)
    assert again.json() == {"error": "invalid_grant", "error_description": "expired authorization code"}
    code = callback_params(authorize(client, salesforce_sandbox, challenge))["code"]
    salesforce_sandbox.advance_clock(16 * 60)
    late = exchange(client, salesforce_sandbox, code, verifier)
    assert late.json()["error_description"] == "expired authorization code"


def test_wrong_redirect_uri_and_unknown_client(client, salesforce_sandbox) -> None:
    verifier, challenge = pkce()
    code = callback_params(authorize(client, salesforce_sandbox, challenge))["code"]
    r = exchange(client, salesforce_sandbox, code, verifier, redirect_uri="http://127.0.0.1:1718/OAuth/Callback")
    assert r.json() == {"error": "redirect_uri_mismatch", "error_description": "redirect_uri must match configuration"}
    r = client.post("/services/oauth2/token", data={"grant_type": "authorization_code", "code": "x",
                                                    "client_id": "nope", "redirect_uri": CALLBACK})  # fmt: skip
    assert (r.status_code, r.json()) == (400, {"error": "invalid_client_id",
                                               "error_description": "client identifier invalid"})  # fmt: skip


@pytest.mark.parametrize("uri", [f"http://127.0.0.1:{p}/OAuth/Callback" for p in (1717, 1718, 1719)]
                         + ["http://localhost:1719/OAuth/Callback"])  # fmt: skip
def test_registered_callbacks_are_accepted(client, salesforce_sandbox, uri: str) -> None:
    page = client.get("/services/oauth2/authorize", params={
        "response_type": "code", "client_id": salesforce_sandbox.client_id, "redirect_uri": uri})  # fmt: skip
    assert page.status_code == 200 and 'name="username"' in page.text


@pytest.mark.parametrize("uri", ["http://localhost:1720/OAuth/Callback", "http://localhost:1717/OauthRedirect",
                                 "https://evil.example/OAuth/Callback"])  # fmt: skip
def test_other_callbacks_get_redirect_uri_mismatch(client, salesforce_sandbox, uri: str) -> None:
    page = client.get("/services/oauth2/authorize", params={
        "response_type": "code", "client_id": salesforce_sandbox.client_id, "redirect_uri": uri})  # fmt: skip
    assert page.status_code == 400 and "Location" not in page.headers
    assert "redirect_uri_mismatch" in page.text


def test_deny_and_bad_password(client, salesforce_sandbox) -> None:
    denied = callback_params(authorize(client, salesforce_sandbox, action="Deny"))
    assert denied == {"error": "access_denied", "error_description": "end-user denied authorization",
                      "state": "xyz<&>"}  # fmt: skip
    from types import SimpleNamespace

    bad = authorize(client, salesforce_sandbox, user=SimpleNamespace(username=salesforce_sandbox.admin.username,
                                                                     password="wrong"))  # fmt: skip
    assert bad.status_code == 200 and "Please check your username and password" in bad.text


def test_invalid_scope_goes_back_to_the_callback(client, salesforce_sandbox) -> None:
    r = client.get("/services/oauth2/authorize", params={
        "response_type": "code", "client_id": salesforce_sandbox.client_id, "redirect_uri": CALLBACK,
        "scope": "api launch_missiles", "state": "s"})  # fmt: skip
    assert callback_params(r)["error"] == "invalid_scope"


# -- tokens: expiry, refresh, revoke -----------------------------------------------------------------------


def test_token_expiry_then_refresh(client, salesforce_sandbox) -> None:
    verifier, challenge = pkce()
    code = callback_params(authorize(client, salesforce_sandbox, challenge))["code"]
    tok = exchange(client, salesforce_sandbox, code, verifier).json()
    auth = {"Authorization": f"Bearer {tok['access_token']}"}
    assert client.get("/services/data/v62.0/limits/", headers=auth).status_code == 200
    salesforce_sandbox.advance_clock(2 * 3600 + 1)  # default session timeout: 2 hours
    expired = client.get("/services/data/v62.0/limits/", headers=auth)
    assert expired.status_code == 401
    assert expired.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    r = client.post("/services/oauth2/token", data={"grant_type": "refresh_token",
                                                    "refresh_token": tok["refresh_token"],
                                                    "client_id": salesforce_sandbox.client_id})  # fmt: skip
    fresh = r.json()
    assert r.status_code == 200 and "refresh_token" not in fresh and "expires_in" not in fresh
    assert client.get("/services/data/v62.0/limits/",
                      headers={"Authorization": f"Bearer {fresh['access_token']}"}).status_code == 200  # fmt: skip


def test_configurable_ttl(tmp_path) -> None:
    from lc_console.sandbox.salesforce import SalesforceSandbox

    with SalesforceSandbox(token_ttl_seconds=5) as sb:
        token = sb.login()
        ctx = ssl.create_default_context(cafile=sb.ca_file)
        with httpx.Client(base_url=sb.url, verify=ctx, headers={"Authorization": f"Bearer {token}"}) as c:
            assert c.get("/services/data/v62.0/sobjects/").status_code == 200
            sb.advance_clock(5)
            assert c.get("/services/data/v62.0/sobjects/").status_code == 401


def test_revoke_refresh_token_revokes_its_access_tokens(client, salesforce_sandbox) -> None:
    verifier, challenge = pkce()
    code = callback_params(authorize(client, salesforce_sandbox, challenge))["code"]
    tok = exchange(client, salesforce_sandbox, code, verifier).json()
    assert client.post("/services/oauth2/revoke", data={"token": tok["refresh_token"]}).status_code == 200
    assert client.get("/services/data/v62.0/sobjects/",
                      headers={"Authorization": f"Bearer {tok['access_token']}"}).status_code == 401  # fmt: skip
    r = client.post("/services/oauth2/token", data={"grant_type": "refresh_token",
                                                    "refresh_token": tok["refresh_token"],
                                                    "client_id": salesforce_sandbox.client_id})  # fmt: skip
    assert r.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}
    unknown = client.post("/services/oauth2/revoke", data={"token": "nope"})
    assert unknown.status_code == 400 and unknown.json()["error"] == "unsupported_token_type"


def test_introspect(client, salesforce_sandbox) -> None:
    token = salesforce_sandbox.login()
    r = client.post("/services/oauth2/introspect", data={"token": token, "client_id": salesforce_sandbox.client_id})
    body = r.json()
    assert body["active"] is True and body["username"] == salesforce_sandbox.admin.username
    assert body["exp"] - body["iat"] == 7200
    r = client.post("/services/oauth2/introspect", data={"token": "x", "client_id": salesforce_sandbox.client_id})
    assert r.json() == {"active": False}


# -- device flow -----------------------------------------------------------------------------------


def test_device_flow(client, salesforce_sandbox) -> None:
    start = client.post("/services/oauth2/token", data={"response_type": "device_code",
                                                        "client_id": salesforce_sandbox.client_id,
                                                        "scope": "api refresh_token"}).json()  # fmt: skip
    assert set(start) == {"device_code", "user_code", "verification_uri", "interval"}
    poll = {"grant_type": "device", "client_id": salesforce_sandbox.client_id, "code": start["device_code"]}
    assert client.post("/services/oauth2/token", data=poll).json()["error"] == "authorization_pending"
    assert client.post("/services/oauth2/token", data=poll).json()["error"] == "slow_down"
    page = client.get(urlsplit(start["verification_uri"]).path)
    assert 'name="user_code"' in page.text and 'name="username"' in page.text
    user = salesforce_sandbox.user
    done = client.post("/setup/connect", data={"user_code": start["user_code"].lower(), "username": user.username,
                                               "password": user.password, "action": "Allow"})  # fmt: skip
    assert "connected" in done.text
    salesforce_sandbox.advance_clock(start["interval"])
    tok = client.post("/services/oauth2/token", data=poll).json()
    assert tok["id"].endswith(user.id) and "refresh_token" in tok


def test_device_code_expires(client, salesforce_sandbox) -> None:
    start = client.post("/services/oauth2/token", data={"response_type": "device_code",
                                                        "client_id": salesforce_sandbox.client_id}).json()  # fmt: skip
    salesforce_sandbox.advance_clock(11 * 60)
    r = client.post("/services/oauth2/token", data={"grant_type": "device", "client_id": salesforce_sandbox.client_id,
                                                    "code": start["device_code"]})  # fmt: skip
    assert r.json()["error"] == "expired_token"


# -- password grant and SOAP login -------------------------------------------------------------------------


def test_username_password_grant(client, salesforce_sandbox) -> None:
    admin = salesforce_sandbox.admin
    ok = client.post("/services/oauth2/token", data={"grant_type": "password", "client_id": salesforce_sandbox.client_id,
                                                     "client_secret": "any", "username": admin.username,
                                                     "password": admin.password})  # fmt: skip
    assert ok.status_code == 200 and "refresh_token" not in ok.json()
    bad = client.post("/services/oauth2/token", data={"grant_type": "password", "client_id": salesforce_sandbox.client_id,
                                                      "client_secret": "any", "username": admin.username,
                                                      "password": "nope"})  # fmt: skip
    assert bad.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def _session(sb: Any) -> requests.Session:
    s = requests.Session()
    s.verify = sb.ca_file
    s.trust_env = False
    return s


def test_soap_login_as_simple_salesforce_does_it(salesforce_sandbox) -> None:
    admin = salesforce_sandbox.admin
    session_id, instance = SalesforceLogin(username=admin.username, password=admin.password,
                                           session=_session(salesforce_sandbox), scratch_url=salesforce_sandbox.url)  # fmt: skip
    assert instance == salesforce_sandbox.url.removeprefix("https://")
    sf = Salesforce(instance=instance, session_id=session_id, session=_session(salesforce_sandbox))
    assert sf.query(f"SELECT Username FROM User WHERE Id = '{admin.id}'")["records"][0]["Username"] == admin.username
    with pytest.raises(SalesforceAuthenticationFailed) as exc:
        SalesforceLogin(username=admin.username, password="wrong", session=_session(salesforce_sandbox),
                        scratch_url=salesforce_sandbox.url)  # fmt: skip
    assert exc.value.code == "INVALID_LOGIN"
