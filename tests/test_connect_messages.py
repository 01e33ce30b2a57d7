"""The one error-to-message mapping says each thing once."""

from __future__ import annotations

from lc_console.salesforce import tokens
from lc_console.services.connect import describe_error


def test_not_connected_is_said_once_with_the_fix() -> None:
    text = describe_error(tokens.NotConnected()).text()
    assert text.count("not connected") == 1
    assert "What to do: Run `lc-console connect salesforce`." in text


def test_not_connected_keeps_a_specific_detail() -> None:
    msg = describe_error(tokens.NotConnected("No refresh token in the keyring for profile acme."))
    assert msg.detail == "No refresh token in the keyring for profile acme."
