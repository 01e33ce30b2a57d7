"""SOAP 1.1 envelopes of the Metadata API: reading requests, writing responses and faults.

Requests come from two kinds of clients: zeep (``sf.mdapi``), which sends ``SOAPAction: ""``
and only a ``SessionHeader``, and simple-salesforce's hand-written deploy messages, which
have no XML declaration, write booleans as Python's ``True``/``False`` and leave stray
``None`` text inside ``DeployOptions``. So the operation is taken from the body element,
booleans are read case-insensitively, and text between elements is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from lc_console.sandbox.salesforce.metadata_xml import MD_NS, Node, XmlError, parse_xml

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
CONTENT_TYPE = "text/xml; charset=utf-8"


class SoapFault(Exception):
    """A SOAP fault; Salesforce answers every fault with HTTP 500."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code  # "sf:INVALID_SESSION_ID", "soapenv:Client", ...
        self.message = message

    def render(self) -> bytes:
        return fault(self.code, self.message)


@dataclass
class SoapRequest:
    operation: str  # local name of the body element: deploy, checkDeployStatus, ...
    body: Node
    session_id: str | None
    client: str | None


def parse_request(data: bytes) -> SoapRequest:
    try:
        envelope = parse_xml(data)
    except XmlError as exc:
        raise SoapFault("soapenv:Client", f"Error parsing request: {exc.message}") from None
    if envelope.tag != "Envelope" or envelope.ns != SOAP_ENV_NS:
        raise SoapFault("soapenv:VersionMismatch",
                        "Wrong SOAP version or envelope namespace: expected a SOAP 1.1 Envelope")
    header = envelope.find("Header")
    body = envelope.find("Body")
    if body is None or not body.children:
        raise SoapFault("soapenv:Client", "No operation found in the SOAP Body")
    operation = body.children[0]
    session_id = client = None
    if header is not None:
        session = header.find("SessionHeader")
        if session is not None:
            session_id = session.findtext("sessionId") or None
        options = header.find("CallOptions")
        if options is not None:
            client = options.findtext("client") or None
    return SoapRequest(operation=operation.tag, body=operation, session_id=session_id,
                       client=client)


def parse_bool(text: str | None, default: bool = False) -> bool:
    if text is None or text.strip() == "":
        return default
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise SoapFault("soapenv:Client", f"'{text.strip()}' is not a valid value for the type "
                                      "xsd:boolean")


# --- rendering ---------------------------------------------------------------------------

def envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns="{MD_NS}" xmlns:xsi="{XSI_NS}">'
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ).encode()


def fault(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns:sf="{MD_NS}">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>{escape(code)}</faultcode><faultstring>{escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()


def xml_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return xml_datetime(value)
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return escape(str(value))


def element(name: str, value: Any) -> str:
    """``<name>value</name>``; None renders nothing, lists render one element per item."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "".join(element(name, item) for item in value)
    return f"<{name}>{scalar(value)}</{name}>"


def elements(pairs: list[tuple[str, Any]]) -> str:
    return "".join(element(name, value) for name, value in pairs)


def response(operation: str, result: str) -> bytes:
    """``<opResponse><result>...</result></opResponse>`` inside an envelope."""
    return envelope(f"<{operation}Response>{result}</{operation}Response>")
