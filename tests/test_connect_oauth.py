"""Pure OAuth pieces, the loopback callback server and the port check (no Salesforce needed)."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from lc_console.salesforce import callback_server as cb
from lc_console.salesforce import oauth, ports


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- PKCE, state, authorize URL -----------------------------------------------------------------


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert oauth.challenge_for(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_new_pkce_is_random_and_valid() -> None:
    a, b = oauth.new_pkce(), oauth.new_pkce()
    assert a.verifier != b.verifier
    assert 43 <= len(a.verifier) <= 128
    assert set(a.verifier) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    digest = base64.urlsafe_b64encode(hashlib.sha256(a.verifier.encode()).digest()).rstrip(b"=")
    assert a.challenge == digest.decode()
    assert oauth.new_state() != oauth.new_state()


def test_authorize_url_parameters() -> None:
    pkce = oauth.new_pkce()
    url = oauth.authorize_url("https://acme.my.salesforce.com/", "CLIENT", oauth.redirect_uri(1718),
                              "STATE", pkce)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https", "acme.my.salesforce.com", "/services/oauth2/authorize")
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q == {
        "response_type": "code", "client_id": "CLIENT",
        "redirect_uri": "http://localhost:1718/OAuth/Callback",
        "scope": "api refresh_token", "state": "STATE",
        "code_challenge": pkce.challenge, "code_challenge_method": "S256", "prompt": "login",
    }
    assert pkce.verifier not in url


# --- environments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "env", "url"), [
    ("production", "production", "https://login.salesforce.com"),
    ("Sandbox", "sandbox", "https://test.salesforce.com"),
    ("https://login.salesforce.com/", "production", "https://login.salesforce.com"),
    ("test.salesforce.com", "sandbox", "https://test.salesforce.com"),
    ("acme.my.salesforce.com", "custom", "https://acme.my.salesforce.com"),
    ("https://Acme--UAT.sandbox.my.salesforce.com/home/home.jsp?x=1", "custom",
     "https://acme--uat.sandbox.my.salesforce.com"),
    ("https://127.0.0.1:8443", "custom", "https://127.0.0.1:8443"),
    ("https://acme.my.salesforce.com:443", "custom", "https://acme.my.salesforce.com"),
])
def test_resolve_login(given: str, env: str, url: str) -> None:
    target = oauth.resolve_login(given)
    assert (target.environment, target.login_url) == (env, url)


@pytest.mark.parametrize(("given", "suggestion"), [
    ("https://acme.lightning.force.com/lightning/page/home", "https://acme.my.salesforce.com"),
    ("acme--uat.sandbox.lightning.force.com", "https://acme--uat.sandbox.my.salesforce.com"),
    ("https://acme-dev-ed.develop.lightning.force.com", "https://acme-dev-ed.develop.my.salesforce.com"),
    ("https://acme.my.salesforce-setup.com/lightning/setup", "https://acme.my.salesforce.com"),
    ("https://acme--c.vf.force.com/apex/x", "https://acme.my.salesforce.com"),
    ("http://acme.my.salesforce.com", "https://acme.my.salesforce.com"),
])
def test_resolve_login_refuses_non_login_hosts_with_the_right_url(given: str, suggestion: str) -> None:
    with pytest.raises(oauth.LoginUrlError) as info:
        oauth.resolve_login(given)
    assert info.value.suggestion == suggestion
    assert suggestion in str(info.value)


def test_lightning_message_names_the_problem() -> None:
    with pytest.raises(oauth.LoginUrlError, match="Lightning Experience address, not a login URL"):
        oauth.resolve_login("acme.lightning.force.com")


@pytest.mark.parametrize("given", ["", "   ", "https://", "https://user:pw@acme.my.salesforce.com"])
def test_resolve_login_rejects_garbage(given: str) -> None:
    with pytest.raises(oauth.LoginUrlError):
        oauth.resolve_login(given)


def test_parse_identity_url() -> None:
    assert oauth.parse_identity_url(
        "https://login.salesforce.com/id/00DXX0000000001AAA/005XX0000000001AAA"
    ) == ("00DXX0000000001AAA", "005XX0000000001AAA")
    with pytest.raises(ValueError):
        oauth.parse_identity_url("https://login.salesforce.com/services/x")


# --- callback server -------------------------------------------------------------------------------


def run_wait(server: cb.CallbackServer, **kw: object) -> dict[str, object]:
    out: dict[str, object] = {}

    def target() -> None:
        try:
            out["code"] = server.wait(**kw)  # type: ignore[arg-type]
        except cb.CallbackError as exc:
            out["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    out["thread"] = t
    return out


def get(port: int, path: str, host: str | None = None) -> httpx.Response:
    headers = {"Host": host} if host else {}
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=5)


def test_callback_success_returns_code_once_and_shuts_down() -> None:
    port = free_port()
    srv = cb.CallbackServer(port, "S1", timeout=10)
    srv.start()
    assert srv.redirect_uri == f"http://localhost:{port}/OAuth/Callback"
    waiting = run_wait(srv)
    assert get(port, "/favicon.ico").status_code == 404
    assert httpx.post(f"http://127.0.0.1:{port}/OAuth/Callback", timeout=5).status_code == 405
    assert get(port, "/OAuth/Callback").status_code == 400  # no OAuth parameters: keeps waiting
    resp = get(port, "/OAuth/Callback?code=aPrx%3D%3D&state=S1", host=f"localhost:{port}")
    assert resp.status_code == 200
    assert 'data-outcome="success"' in resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    waiting["thread"].join(5)  # type: ignore[attr-defined]
    assert waiting["code"] == "aPrx=="  # decoded exactly once
    with pytest.raises(httpx.ConnectError):
        get(port, "/OAuth/Callback?code=x&state=S1")
    assert ports.is_free(port)


def test_callback_state_mismatch_is_refused() -> None:
    port = free_port()
    srv = cb.CallbackServer(port, "RIGHT", timeout=10)
    srv.start()
    waiting = run_wait(srv)
    resp = get(port, "/OAuth/Callback?code=abc&state=WRONG")
    assert resp.status_code == 400
    assert "another sign-in" in resp.text
    waiting["thread"].join(5)  # type: ignore[attr-defined]
    assert isinstance(waiting["error"], cb.StateMismatch)
    assert "code" not in waiting


def test_callback_deny_and_salesforce_error_are_escaped() -> None:
    port = free_port()
    srv = cb.CallbackServer(port, "S", timeout=10)
    srv.start()
    waiting = run_wait(srv)
    resp = get(port, "/OAuth/Callback?error=access_denied&error_description=end-user+denied"
                     "+authorization&state=S")
    assert 'data-outcome="denied"' in resp.text
    waiting["thread"].join(5)  # type: ignore[attr-defined]
    assert isinstance(waiting["error"], cb.AuthorizationDenied)

    port = free_port()
    srv = cb.CallbackServer(port, "S", timeout=10)
    srv.start()
    waiting = run_wait(srv)
    resp = get(port, "/OAuth/Callback?error=OAUTH_APP_BLOCKED&error_description=%3Cscript%3Ealert(1)"
                     "%3C%2Fscript%3E&state=S")
    assert "<script>" not in resp.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in resp.text
    waiting["thread"].join(5)  # type: ignore[attr-defined]
    err = waiting["error"]
    assert isinstance(err, cb.AuthorizationFailed)
    assert err.error == "OAUTH_APP_BLOCKED"


def test_callback_refuses_foreign_host_header() -> None:
    port = free_port()
    with cb.CallbackServer(port, "S", timeout=10):
        resp = get(port, "/OAuth/Callback?code=abc&state=S", host="evil.example:80")
        assert resp.status_code == 400


def test_callback_timeout_and_cancel() -> None:
    port = free_port()
    srv = cb.CallbackServer(port, "S", timeout=0.3)
    srv.start()
    with pytest.raises(cb.CallbackTimeout):
        srv.wait()
    assert ports.is_free(port)

    srv = cb.CallbackServer(port, "S", timeout=30)
    srv.start()
    cancel = threading.Event()
    waiting = run_wait(srv, cancel=cancel)
    cancel.set()
    waiting["thread"].join(5)  # type: ignore[attr-defined]
    assert isinstance(waiting["error"], cb.CallbackCancelled)


def test_port_in_use_names_this_process_and_offers_the_next_port() -> None:
    taken, spare = free_port(), free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        holder = ports.find_port_holder(taken)
        assert holder is not None and holder.pid == os.getpid()
        srv = cb.CallbackServer(taken, "S", alternatives=[taken, spare])
        with pytest.raises(cb.PortInUse) as info:
            srv.start()
    err = info.value
    assert err.port == taken
    assert err.alternatives == [spare]
    assert f"pid {os.getpid()}" in str(err)


def test_port_holder_parsed_from_proc_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = tmp_path
    (proc / "net").mkdir()
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    (proc / "net" / "tcp").write_text(
        header + "   0: 0100007F:06B5 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 424242 1 0 100 0 0 10 0\n")
    (proc / "net" / "tcp6").write_text(header)
    pid_dir = proc / "4321"
    (pid_dir / "fd").mkdir(parents=True)
    (pid_dir / "comm").write_text("node\n")
    (pid_dir / "cmdline").write_bytes(b"node\0/usr/lib/sf/bin/run\0org\0login\0web\0")
    os.symlink("socket:[424242]", pid_dir / "fd" / "7")
    holder = ports.find_port_holder(1717, proc=proc)
    assert holder == ports.PortHolder(pid=4321, name="node", command="node /usr/lib/sf/bin/run org login web")
    assert holder.describe() == "node (pid 4321: node /usr/lib/sf/bin/run org login web)"
