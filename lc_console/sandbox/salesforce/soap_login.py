"""SOAP partner API `login` (/services/Soap/u/NN.N), as simple-salesforce's username /
password constructor and jsforce use it. Only `login` is implemented on this endpoint."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from lc_console.sandbox.salesforce.http import Request, Response, route, xml_response

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
_USER_RE = re.compile(r"<(?:[\w-]+:)?username>(.*?)</(?:[\w-]+:)?username>", re.S)
_PASS_RE = re.compile(r"<(?:[\w-]+:)?password>(.*?)</(?:[\w-]+:)?password>", re.S)
_LOGIN_RE = re.compile(r"<(?:[\w-]+:)?login[\s>]")


def _unescape(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))  # fmt: skip


def login_fault(code: str, message: str) -> Response:
    return xml_response(
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{escape(message)}"
        "</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>",
        500,
    )


@route("POST", r"/services/Soap/u/(?P<version>\d+\.\d)(?:/[^/]*)?/?", auth="public")
def soap_login(req: Request) -> Response:
    text = req.body.decode("utf-8", "replace")
    if not _LOGIN_RE.search(text):
        return login_fault("UNKNOWN_EXCEPTION", "This sandbox implements only the login call "
                           "of the partner SOAP API; use the REST API for data.")  # fmt: skip
    mu, mp = _USER_RE.search(text), _PASS_RE.search(text)
    org = req.org
    account = org.authenticate(_unescape(mu.group(1)).strip() if mu else "",
                               _unescape(mp.group(1)) if mp else "")  # fmt: skip
    if account is None:
        return login_fault("INVALID_LOGIN",
                           "Invalid username, password, security token; or user locked out.")  # fmt: skip
    version = req.params["version"]
    session = org.sessions.issue(account.id, "SOAP-login", ("api", "web", "full"),
                                 login_host=req.base_url())  # fmt: skip
    user = org.user_record(account.id)
    base = req.app.base_url or req.base_url()
    org15 = org.org_id[:15]
    ttl = int(org.sessions.ttl_seconds)
    row_org = org.records("Organization")[0]
    return xml_response(
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>'
        f"<metadataServerUrl>{base}/services/Soap/m/{version}/{org15}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired>"
        f"<sandbox>{'true' if row_org.get('IsSandbox') else 'false'}</sandbox>"
        f"<serverUrl>{base}/services/Soap/u/{version}/{org15}</serverUrl>"
        f"<sessionId>{escape(session.token)}</sessionId>"
        f"<userId>{account.id}</userId>"
        "<userInfo><accessibilityMode>false</accessibilityMode><chatterExternal>false</chatterExternal>"
        "<currencySymbol>$</currencySymbol><orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"
        "<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"
        "<orgDefaultCurrencyLocale>en_US</orgDefaultCurrencyLocale>"
        "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>"
        "<orgHasPersonAccounts>false</orgHasPersonAccounts>"
        f"<organizationId>{org.org_id}</organizationId>"
        "<organizationMultiCurrency>false</organizationMultiCurrency>"
        f"<organizationName>{escape(str(row_org.get('Name')))}</organizationName>"
        f"<profileId>{user['ProfileId']}</profileId><roleId xsi:nil=\"true\"/>"
        f"<sessionSecondsValid>{ttl}</sessionSecondsValid>"
        f"<userDefaultCurrencyIsoCode xsi:nil=\"true\"/><userEmail>{escape(user['Email'])}</userEmail>"
        f"<userFullName>{escape(user['Name'] or '')}</userFullName><userId>{account.id}</userId>"
        f"<userLanguage>{user['LanguageLocaleKey']}</userLanguage><userLocale>{user['LocaleSidKey']}</userLocale>"
        f"<userName>{escape(user['Username'])}</userName><userTimeZone>{user['TimeZoneSidKey']}</userTimeZone>"
        "<userType>Standard</userType><userUiSkin>Theme3</userUiSkin></userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )


ROUTES = [soap_login]
