"""Salesforce error codes sorted by what the sync does about them."""

from __future__ import annotations

# Retried with backoff, then kept as failed.
TRANSIENT_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "REQUEST_LIMIT_EXCEEDED",
    "REQUEST_RUNNING_TOO_LONG",
    "QUERY_TIMEOUT",
    "TXN_SECURITY_METERING_ERROR",
    "CONNECTION_ERROR",  # ours: dropped connection, timeout
    "HTTP_5XX",  # ours: a 5xx without a Salesforce error body
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",  # another record of the request failed
})

# Needs a token refresh; when that fails the connection is expired and the sync pauses.
SESSION_CODES = frozenset({"INVALID_SESSION_ID"})


def is_transient(code: str) -> bool:
    return code in TRANSIENT_CODES


def is_session(code: str) -> bool:
    return code in SESSION_CODES


# What an admin should do about the common permanent errors (shown in Failures and the CLI).
ADVICE = {
    "INVALID_FIELD": "A field the console writes is missing or not visible to the connected "
                     "user. Run `lc-console install --plan`, then install or repair.",
    "INVALID_FIELD_FOR_INSERT_UPDATE": "A field is not writable for the connected user: check "
                                       "the LostChurn_Integration permission set.",
    "REQUIRED_FIELD_MISSING": "A required field has no value. Map a value to it or relax the "
                              "requirement in Salesforce.",
    "STRING_TOO_LONG": "A value is longer than the field allows.",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": "A picklist value is not allowed: add it to the "
                                               "picklist in Salesforce or change the mapping.",
    "DUPLICATE_VALUE": "Another record already holds this unique value.",
    "DUPLICATES_DETECTED": "A Salesforce duplicate rule blocked the write.",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": "A validation rule in the org rejected the record. "
                                         "Fix the data or the rule, then retry.",
    "INVALID_CROSS_REFERENCE_KEY": "A lookup points at a record that does not exist.",
    "ENTITY_IS_DELETED": "The record was deleted in Salesforce.",
    "INSUFFICIENT_ACCESS_OR_READONLY": "The connected user may not edit this record.",
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": "A trigger or flow in the org failed on this record.",
}


def advice_for(code: str) -> str:
    return ADVICE.get(code, "")
