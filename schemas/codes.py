"""Rule IDs and reason codes of docs/rules.md: the one enumeration every service uses.

Values are the IDs and codes verbatim; a test checks this module against docs/rules.md both ways.
"""

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "SUSPICIOUS",
    "ReasonCode",
    "Rejection",
    "RuleId",
]


class RuleId(StrEnum):
    """A business rule of docs/rules.md."""

    IN_01 = "IN-01"
    IN_02 = "IN-02"
    IN_03 = "IN-03"
    IN_04 = "IN-04"
    IN_05 = "IN-05"
    IN_06 = "IN-06"
    IN_07 = "IN-07"
    IN_08 = "IN-08"
    IN_09 = "IN-09"
    IN_10 = "IN-10"
    IN_11 = "IN-11"
    IN_12 = "IN-12"
    IN_13 = "IN-13"
    IN_14 = "IN-14"
    IN_15 = "IN-15"
    IN_16 = "IN-16"
    IN_17 = "IN-17"
    IN_18 = "IN-18"
    IN_19 = "IN-19"
    IN_20 = "IN-20"
    IN_21 = "IN-21"
    IN_22 = "IN-22"
    IN_23 = "IN-23"
    IN_24 = "IN-24"
    IN_25 = "IN-25"
    IN_26 = "IN-26"
    VA_01 = "VA-01"
    VA_02 = "VA-02"
    VA_03 = "VA-03"
    VA_04 = "VA-04"
    VA_05 = "VA-05"
    VA_06 = "VA-06"
    VA_07 = "VA-07"
    VA_08 = "VA-08"
    PO_01 = "PO-01"
    PO_02 = "PO-02"
    PO_03 = "PO-03"
    PO_04 = "PO-04"
    PO_05 = "PO-05"
    PO_06 = "PO-06"
    PO_07 = "PO-07"
    PO_08 = "PO-08"
    PO_09 = "PO-09"
    PO_10 = "PO-10"
    PO_11 = "PO-11"
    PO_12 = "PO-12"
    NO_01 = "NO-01"
    NO_02 = "NO-02"
    NO_03 = "NO-03"
    NO_04 = "NO-04"
    NO_05 = "NO-05"
    NO_06 = "NO-06"
    NO_07 = "NO-07"
    NO_08 = "NO-08"
    MK_01 = "MK-01"
    MK_02 = "MK-02"
    MK_03 = "MK-03"
    MK_04 = "MK-04"
    MK_05 = "MK-05"
    MK_06 = "MK-06"
    RT_01 = "RT-01"
    RT_02 = "RT-02"
    TB_01 = "TB-01"
    TB_02 = "TB-02"
    TB_03 = "TB-03"
    CN_01 = "CN-01"
    CN_02 = "CN-02"
    CN_03 = "CN-03"
    CN_04 = "CN-04"
    CN_05 = "CN-05"
    CN_06 = "CN-06"
    CN_07 = "CN-07"
    CN_08 = "CN-08"
    CN_09 = "CN-09"
    CN_10 = "CN-10"
    AU_01 = "AU-01"
    AU_02 = "AU-02"
    AU_03 = "AU-03"
    AU_04 = "AU-04"
    ES_01 = "ES-01"
    ES_02 = "ES-02"
    ES_03 = "ES-03"
    ES_04 = "ES-04"
    ES_05 = "ES-05"
    DP_01 = "DP-01"
    DP_02 = "DP-02"
    DP_03 = "DP-03"
    DP_04 = "DP-04"
    DP_05 = "DP-05"
    DO_01 = "DO-01"
    DO_02 = "DO-02"
    DO_03 = "DO-03"
    DO_04 = "DO-04"
    DO_05 = "DO-05"
    DO_06 = "DO-06"
    DO_07 = "DO-07"
    DO_08 = "DO-08"
    PT_01 = "PT-01"
    PT_02 = "PT-02"
    PT_03 = "PT-03"
    PT_04 = "PT-04"
    PT_05 = "PT-05"
    MN_01 = "MN-01"
    MN_02 = "MN-02"
    MN_03 = "MN-03"
    MN_04 = "MN-04"
    MN_05 = "MN-05"
    MN_06 = "MN-06"
    MN_07 = "MN-07"


class ReasonCode(StrEnum):
    """Why a grant ended as it did: rejection, not processed, hold, expiry, partial, revocation."""

    REJ_SCHEMA = "REJ-SCHEMA"
    REJ_TP_ID_MISSING = "REJ-TP-ID-MISSING"
    REJ_TP_ID_INVALID = "REJ-TP-ID-INVALID"
    REJ_SIGN_DATE_FUTURE = "REJ-SIGN-DATE-FUTURE"
    REJ_ESIG_WRONG_CHANNEL = "REJ-ESIG-WRONG-CHANNEL"
    REJ_DESIG_INVALID = "REJ-DESIG-INVALID"
    REJ_REP_CREDENTIAL_INCOMPLETE = "REJ-REP-CREDENTIAL-INCOMPLETE"
    REJ_STUDENT_NO_LETTER = "REJ-STUDENT-NO-LETTER"
    REJ_REP_SIG_MISSING = "REJ-REP-SIG-MISSING"
    REJ_TP_SIG_MISSING = "REJ-TP-SIG-MISSING"
    REJ_REP_SIG_WINDOW = "REJ-REP-SIG-WINDOW"
    REJ_MATTER_INCOMPLETE = "REJ-MATTER-INCOMPLETE"
    REJ_MATTER_GENERAL = "REJ-MATTER-GENERAL"
    REJ_MATTER_PERIOD_INVALID = "REJ-MATTER-PERIOD-INVALID"
    REJ_RETAIN_NO_COPY = "REJ-RETAIN-NO-COPY"
    REJ_CAF_FORMAT = "REJ-CAF-FORMAT"
    REJ_TOO_MANY_REPS = "REJ-TOO-MANY-REPS"
    REJ_TPA_REP_INELIGIBLE = "REJ-TPA-REP-INELIGIBLE"
    REJ_TPA_TP_INELIGIBLE = "REJ-TPA-TP-INELIGIBLE"
    REJ_TPA_MATTER = "REJ-TPA-MATTER"
    REJ_UNKNOWN_REQUEST = "REJ-UNKNOWN-REQUEST"
    REJ_REVOKE_UNSIGNED = "REJ-REVOKE-UNSIGNED"
    REJ_IDENTITY_ASSURANCE = "REJ-IDENTITY-ASSURANCE"
    REJ_REP_NOT_GOOD_STANDING = "REJ-REP-NOT-GOOD-STANDING"
    REJ_REP_PENDING_REVIEW = "REJ-REP-PENDING-REVIEW"
    REJ_REP_INACTIVE = "REJ-REP-INACTIVE"
    REJ_CAF_UNKNOWN = "REJ-CAF-UNKNOWN"
    REJ_REP_NAME_MISMATCH = "REJ-REP-NAME-MISMATCH"
    REJ_URP_NOT_ELIGIBLE = "REJ-URP-NOT-ELIGIBLE"
    REJ_SIGNATURE_DAY_MISMATCH = "REJ-SIGNATURE-DAY-MISMATCH"
    REJ_MATTER_FUTURE_ONLY = "REJ-MATTER-FUTURE-ONLY"
    REJ_NOTHING_TO_WITHDRAW = "REJ-NOTHING-TO-WITHDRAW"
    REJ_NOTHING_TO_REVOKE = "REJ-NOTHING-TO-REVOKE"
    NP_DUPLICATE = "NP-DUPLICATE"
    NP_SPECIFIC_USE = "NP-SPECIFIC-USE"
    NP_NOTICE_LIMIT_EXCEEDED = "NP-NOTICE-LIMIT-EXCEEDED"
    NP_SUPERSEDED = "NP-SUPERSEDED"
    HOLD_VELOCITY = "HOLD-VELOCITY"
    EXP_NO_DECISION = "EXP-NO-DECISION"
    PART_FUTURE_PERIOD_DROPPED = "PART-FUTURE-PERIOD-DROPPED"
    REV_SUPERSEDED = "REV-SUPERSEDED"
    REV_BY_TAXPAYER = "REV-BY-TAXPAYER"
    REV_STUDENT_PURGE = "REV-STUDENT-PURGE"
    PART_SUPERSEDED = "PART-SUPERSEDED"
    REJ_MATTER_TOO_MANY = "REJ-MATTER-TOO-MANY"
    REJ_RECEIPT_DATE_INVALID = "REJ-RECEIPT-DATE-INVALID"
    REJ_DESIG_MISMATCH = "REJ-DESIG-MISMATCH"
    REJ_FRAUD_REVIEW = "REJ-FRAUD-REVIEW"
    REJ_IDENTITY_ASSERTION = "REJ-IDENTITY-ASSERTION"
    DELAY_EVIDENCE_UNSTORED = "DELAY-EVIDENCE-UNSTORED"
    REJ_ENTITY_UNKNOWN = "REJ-ENTITY-UNKNOWN"
    REJ_DO_AUTHORITY = "REJ-DO-AUTHORITY"
    REJ_DO_PIN_TOO_SOON = "REJ-DO-PIN-TOO-SOON"
    REJ_DO_PIN_NOT_ISSUED = "REJ-DO-PIN-NOT-ISSUED"
    REJ_DO_PIN_WRONG = "REJ-DO-PIN-WRONG"
    REJ_DO_PIN_LOCKED = "REJ-DO-PIN-LOCKED"
    REJ_DO_PIN_EXPIRED = "REJ-DO-PIN-EXPIRED"
    REJ_DO_PIN_USED = "REJ-DO-PIN-USED"
    REJ_DO_NOT_OFFICIAL = "REJ-DO-NOT-OFFICIAL"
    HOLD_TAXPAYER_CONFIRMATION = "HOLD-TAXPAYER-CONFIRMATION"
    REJ_PT_REFUSED = "REJ-PT-REFUSED"
    REJ_PT_NOT_CONFIRMED = "REJ-PT-NOT-CONFIRMED"
    REJ_PT_NOT_HELD = "REJ-PT-NOT-HELD"
    REJ_IP_PIN_COLLECTED = "REJ-IP-PIN-COLLECTED"


@dataclass(frozen=True)
class Rejection:
    """A rule's refusal: the rule, its reason code and the reason in plain words.

    These are the `rule_id`, `reason_code` and `reason` fields of a rejected or not-processed
    event; every service's rules return them.
    """

    rule: RuleId
    code: ReasonCode
    reason: str


# NO-06: refusals and holds that signal possible misuse of a CAF number; the validator raises
# them (VA-02, VA-05, VA-07, CN-06) and the notifier alerts the practitioner of the number.
SUSPICIOUS = frozenset(
    {
        ReasonCode.REJ_REP_PENDING_REVIEW,
        ReasonCode.REJ_REP_NAME_MISMATCH,
        ReasonCode.REJ_DESIG_MISMATCH,
        ReasonCode.HOLD_VELOCITY,
    }
)
