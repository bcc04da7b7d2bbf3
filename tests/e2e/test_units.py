"""The CAF records exactly the right access, through the four services as processes: unit-wise
revocation (MK-03), canonical matter keys (MK-01/02), partial future ranges (MK-05), retention by
name (RT-01), revocation floors (RT-02), receipt-date bounds (TB-01), name controls (CN-04)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from devstack import messages
from tests.e2e.conftest import Pipeline, business_today, random_ssn, ref_of, submission, unique_caf

pytestmark = pytest.mark.e2e


def of_type(pipeline: Pipeline, ssn: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in pipeline.events(ref_of(ssn)) if e["type"] == kind]


async def active_units(pipeline: Pipeline, ssn: str) -> dict[str, list[str]]:
    """The CAF table itself: each grant item's units, for the active grants."""
    items = await pipeline.caf_items(ref_of(ssn))
    found = {}
    for item in items:
        if item["sk"]["S"].startswith("GRANT#") and item["status"]["S"] == "active":
            grant = json.loads(item["grant"]["S"])
            found[grant["grant_id"]] = [m["period"] for m in grant["matters"]]
    return found


async def test_mk_03_a_poa_for_one_year_leaves_the_rest_of_a_prior_range_active(
    pipeline: Pipeline,
) -> None:
    """MK-03: `2020 thru 2025`, then a newer POA for 2024: the prior grant keeps 2020-2023 and
    2025, in the event and in the CAF table."""
    ssn, first, second = random_ssn(), unique_caf(), unique_caf()
    await pipeline.register(first, "Avery Smith")
    await pipeline.register(second, "Blake Doe")
    today = business_today()
    old = submission(
        ssn, [{"caf_number": first}], periods=["2020 thru 2025"], signed=today - timedelta(days=9)
    )
    await pipeline.send_inbound(old)
    await pipeline.terminal(ref_of(ssn), 1)
    new = submission(ssn, [{"caf_number": second, "name": "Blake Doe"}], periods=["2024"])
    await pipeline.send_inbound(new)
    await pipeline.terminal(ref_of(ssn), 2)
    [revoked] = await pipeline.until(lambda: of_type(pipeline, ssn, "AuthorizationRevoked"))
    assert revoked["tax_matters"] == [
        {"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}
    ]
    assert revoked["remaining_matters"] == [
        {
            "tax_type": "Income",
            "form_number": "1040",
            "periods": ["2020", "2021", "2022", "2023", "2025"],
        }
    ]
    assert await active_units(pipeline, ssn) == {
        f"{old['message_id']}:0": ["2020", "2021", "2022", "2023", "2025"],
        f"{new['message_id']}:0": ["2024"],
    }


async def test_mk_05_a_range_into_the_future_posts_its_recordable_years(
    pipeline: Pipeline,
) -> None:
    """MK-05: a range running past receipt year + 3 records the years up to it."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    year = business_today().year
    await pipeline.send_inbound(
        submission(ssn, [{"caf_number": caf}], periods=[f"{year - 1} thru {year + 6}"])
    )
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["type"] == "AuthorizationPosted"
    assert posted["tax_matters"][0]["periods"] == [str(y) for y in range(year - 1, year + 4)]
    assert [d["period"] for d in posted["dropped_periods"]] == [
        str(y) for y in range(year + 4, year + 7)
    ]


async def test_mk_01_synonyms_overlap_and_a_941_quarter_takes_only_that_quarter(
    pipeline: Pipeline,
) -> None:
    """MK-01: "Income Tax"/"Form 1040" is revoked by "Income"/"1040-SR"; MK-02: a 941 quarter
    revokes that quarter of a 941 year, not the year."""
    ssn, first, second = random_ssn(), unique_caf(), unique_caf()
    await pipeline.register(first, "Avery Smith")
    await pipeline.register(second, "Blake Doe")
    today, year = business_today(), business_today().year - 1
    old = submission(ssn, [{"caf_number": first}], signed=today - timedelta(days=3))
    old["tax_matters"] = [
        {"tax_type": "Income Tax", "form_number": "Form 1040", "periods": [str(year)]},
        {"tax_type": "Employment Tax", "form_number": "Form 941", "periods": [str(year)]},
    ]
    await pipeline.send_inbound(old)
    await pipeline.terminal(ref_of(ssn), 1)
    new = submission(ssn, [{"caf_number": second, "name": "Blake Doe"}])
    new["tax_matters"] = [
        {"tax_type": "Income", "form_number": "1040-SR", "periods": [str(year)]},
        {"tax_type": "Employment", "form_number": "941", "periods": [f"{year}-12"]},
    ]
    await pipeline.send_inbound(new)
    await pipeline.terminal(ref_of(ssn), 2)
    [revoked] = await pipeline.until(lambda: of_type(pipeline, ssn, "AuthorizationRevoked"))
    assert revoked["tax_matters"] == [
        {"tax_type": "Income Tax", "form_number": "Form 1040", "periods": [str(year)]},
        {"tax_type": "Employment Tax", "form_number": "Form 941", "periods": [f"{year}-12"]},
    ]
    assert (await active_units(pipeline, ssn))[f"{old['message_id']}:0"] == [
        f"{year}-03",
        f"{year}-06",
        f"{year}-09",
    ]


async def test_rt_01_retain_keeps_only_the_named_prior_representative(
    pipeline: Pipeline,
) -> None:
    """RT-01: two prior POAs; the new one retains one of them by CAF number."""
    ssn, a, b, c = random_ssn(), unique_caf(), unique_caf(), unique_caf()
    for caf, name in ((a, "Avery Smith"), (b, "Blake Doe"), (c, "Casey Jones")):
        await pipeline.register(caf, name)
    today = business_today()
    first = submission(ssn, [{"caf_number": a}], signed=today - timedelta(days=6))
    await pipeline.send_inbound(first)
    await pipeline.terminal(ref_of(ssn), 1)
    second = submission(
        ssn,
        [{"caf_number": b, "name": "Blake Doe"}],
        signed=today - timedelta(days=6),
        retain_prior=True,
        prior_copies_attached=1,
    )
    await pipeline.send_inbound(second)
    await pipeline.terminal(ref_of(ssn), 2)
    third = submission(
        ssn,
        [{"caf_number": c, "name": "Casey Jones"}],
        retain_prior=True,
        prior_copies_attached=1,
        retain=[{"caf_number": a}],
    )
    await pipeline.send_inbound(third)
    terminal = await pipeline.terminal(ref_of(ssn), 3)
    assert terminal[-1]["retention"] == "named"
    [revoked] = await pipeline.until(lambda: of_type(pipeline, ssn, "AuthorizationRevoked"))
    assert revoked["grant_id"] == f"{second['message_id']}:0"
    assert set(await active_units(pipeline, ssn)) == {
        f"{first['message_id']}:0",
        f"{third['message_id']}:0",
    }


async def test_rt_02_a_form_signed_before_a_revocation_does_not_bring_access_back(
    pipeline: Pipeline,
) -> None:
    """RT-02: the taxpayer revokes 2024 on day D; a form for 2024 and 2025 signed before D that
    arrives afterwards records only 2025."""
    ssn, caf, other = random_ssn(), unique_caf(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await pipeline.register(other, "Blake Doe")
    today = business_today()
    await pipeline.send_inbound(
        submission(ssn, [{"caf_number": caf}], periods=["2024"], signed=today - timedelta(days=8))
    )
    await pipeline.terminal(ref_of(ssn), 1)
    revocation = messages.revocation(
        tin=ssn,
        tax_matters=[messages.tax_matter(["2024"])],
        signed=messages.signature(today - timedelta(days=2), "wet"),
        message_id=str(uuid.uuid4()),
    )
    await pipeline.send_inbound(messages.document(revocation))
    await pipeline.until(lambda: of_type(pipeline, ssn, "AuthorizationRevoked"))
    late = submission(
        ssn,
        [{"caf_number": other, "name": "Blake Doe"}],
        periods=["2024", "2025"],
        signed=today - timedelta(days=4),
    )
    await pipeline.send_inbound(late)
    terminal = await pipeline.terminal(ref_of(ssn), 2)
    posted = terminal[-1]
    assert posted["type"] == "AuthorizationPosted"
    assert posted["tax_matters"][0]["periods"] == ["2025"]
    assert posted["dropped_periods"] == [
        {
            "tax_type": "Income",
            "form_number": "1040",
            "period": "2024",
            "reason_code": "PART-SUPERSEDED",
        }
    ]


async def test_tb_01_a_form_received_in_the_future_is_refused_and_blocks_nothing(
    pipeline: Pipeline,
) -> None:
    """TB-01: `received_on` 2199-12-31 is rejected; a legitimate form afterwards posts."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}], received_on="2199-12-31"))
    [rejected] = await pipeline.terminal(ref_of(ssn), 1)
    assert (rejected["type"], rejected["reason_code"], rejected["rule_id"]) == (
        "AuthorizationRejected",
        "REJ-RECEIPT-DATE-INVALID",
        "TB-01",
    )
    await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}]))
    terminal = await pipeline.terminal(ref_of(ssn), 2)
    assert terminal[-1]["type"] == "AuthorizationPosted"


async def test_cn_04_a_name_with_a_suffix_and_a_credential_matches_the_registry(
    pipeline: Pipeline,
) -> None:
    """CN-04: "Smith, Avery Jr., CPA" is the registry's "Avery Smith"; no fraud alert."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await pipeline.send_inbound(
        submission(ssn, [{"caf_number": caf, "name": "Smith, Avery Jr., CPA"}])
    )
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["type"] == "AuthorizationPosted"


async def test_cn_02_a_first_time_representative_keeps_one_number_across_forms(
    pipeline: Pipeline,
) -> None:
    """PO-08, CN-01, CN-02: the first form gets a new number (CafNumberAssigned); the second,
    again without a number but with the same PTIN, posts under the same number with no new
    notice; the third, naming the number, passes VA-04 because the registry view learned it."""
    ptin = f"P{random_ssn().replace('-', '')[:8]}"
    rep = {"caf_number": None, "name": "Robin First", "ptin": ptin}
    first_ssn, second_ssn, third_ssn = random_ssn(), random_ssn(), random_ssn()
    await pipeline.send_inbound(submission(first_ssn, [rep]))
    [posted] = await pipeline.terminal(ref_of(first_ssn), 1)
    [assigned] = await pipeline.until(lambda: of_type(pipeline, first_ssn, "CafNumberAssigned"))
    number = assigned["caf_number"]
    assert posted["caf_number"] == number
    await pipeline.send_inbound(submission(second_ssn, [rep]))
    [again] = await pipeline.terminal(ref_of(second_ssn), 1)
    assert (again["type"], again["caf_number"]) == ("AuthorizationPosted", number)
    assert of_type(pipeline, second_ssn, "CafNumberAssigned") == []
    await pipeline.send_inbound(submission(third_ssn, [rep | {"caf_number": number}]))
    [third] = await pipeline.terminal(ref_of(third_ssn), 1)
    assert (third["type"], third["caf_number"]) == ("AuthorizationPosted", number)
