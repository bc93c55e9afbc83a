"""The 837I the sample-agency generator writes is valid X12 005010X223A2 by an independent
validator (pyx12, a test dependency only): 1,000 generated claims, zero errors. CLM06 is Not Used
in X223A2 and was sent as Y."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging

import pyx12.params
import pyx12.x12n_document

from kb.sample_agency import AgencyProfile, generate_sample, synthetic_npi
from loaders.claim_record import Claim
from loaders.x12_837i import read_837i, write_837i
from tests.conftest import HHPPS_DIR


def generated_claims(periods: int):
    with open(HHPPS_DIR / "hrg-2023.csv", newline="") as stream:
        thresholds = {row["code"]: int(row["threshold"]) for row in csv.DictReader(stream)}
    profile = AgencyProfile(agency_id=synthetic_npi(21), state="OH", cbsa="17140", fips_county="39061", periods=periods)
    sample = generate_sample(profile, year=2023, seed=2024, lupa_thresholds=thresholds)
    claims = list(sample.claims)
    # an adjustment and a void of claims already sent, as an agency would follow them
    claims.append(dataclasses.replace(claims[1], type_of_bill="0327"))
    claims.append(dataclasses.replace(claims[2], type_of_bill="0328"))
    return claims, sample.member_ids


def validation_errors(text: str, caplog) -> tuple[bool, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="pyx12"):
        valid = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(), src_file=io.StringIO(text), fd_997=None, fd_html=None)
    return valid, [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def test_a_thousand_generated_claims_validate_with_zero_errors(caplog):
    claims, member_ids = generated_claims(998)
    assert len(claims) == 1000
    out = io.StringIO()
    write_837i(claims, out, member_ids=member_ids)
    valid, errors = validation_errors(out.getvalue(), caplog)
    assert errors == [] and valid
    read = list(read_837i(io.BytesIO(out.getvalue().encode()), beneficiary_hash_key=b"k"))
    assert len(read) == 1000 and all(isinstance(claim, Claim) for claim in read)


def test_the_validator_sees_a_claim_with_clm06(caplog):
    """The check would catch the old writer: CLM06 sent as Y is an error."""
    claims, member_ids = generated_claims(2)
    out = io.StringIO()
    write_837i(claims[:1], out, member_ids=member_ids)
    text = out.getvalue()
    clm = next(line for line in text.splitlines() if line.startswith("CLM*"))
    elements = clm.rstrip("~").split("*")
    assert elements[6] == "" and elements[7:] == ["A", "Y", "Y"]
    elements[6] = "Y"
    valid, errors = validation_errors(text.replace(clm, "*".join(elements) + "~"), caplog)
    assert not valid and any("(CLM06) is marked as Not Used" in error for error in errors)
