"""The one place that builds HTTP clients: applies tls.ca_bundle, timeouts and user agent.

Certificate checks are never disabled. An extra CA (tls.ca_bundle) is added to the public
CAs, so a TLS-inspecting corporate proxy or the local Salesforce sandbox can be trusted.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import certifi
import httpx
import platformdirs

from lc_console import APP_NAME, __version__

USER_AGENT = f"lc-console/{__version__}"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def ssl_context(ca_bundle: str = "") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle:
        ctx.load_verify_locations(cafile=str(Path(ca_bundle).expanduser()))
    return ctx


def combined_ca_file(ca_bundle: str = "") -> str:
    """A PEM path with the public CAs plus the extra CA, for clients that take a file
    (requests / simple-salesforce, zeep). CA certificates are public: caching them is safe."""
    if not ca_bundle:
        return certifi.where()
    extra = Path(ca_bundle).expanduser().read_bytes()
    digest = hashlib.sha256(extra).hexdigest()[:16]
    out = Path(platformdirs.user_cache_dir(APP_NAME)) / f"ca-{digest}.pem"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + extra)
        tmp.replace(out)
    return str(out)


def http_client(ca_bundle: str = "", timeout: httpx.Timeout | float = DEFAULT_TIMEOUT) -> httpx.Client:
    return httpx.Client(
        verify=ssl_context(ca_bundle),
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
    )


def requests_session(ca_bundle: str = ""):  # type: ignore[no-untyped-def]
    """A requests.Session for simple-salesforce, trusting the extra CA."""
    import requests

    class _Session(requests.Session):
        # The session alone decides what is trusted. requests lets REQUESTS_CA_BUNDLE /
        # CURL_CA_BUNDLE replace session.verify, and the stripe client passes its own CA
        # bundle with every request; either would silently drop tls.ca_bundle. Proxies from
        # the environment still apply.
        def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            merged["verify"] = self.verify
            return merged

    session = _Session()
    session.verify = combined_ca_file(ca_bundle)
    session.headers["User-Agent"] = USER_AGENT
    return session
