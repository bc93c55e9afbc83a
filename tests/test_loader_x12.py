"""The 837I reader and writer: the real X12 samples, our fixture, one test per failure mode."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import loaders.x12_837i as x12
from kb.sample_agency import SAMPLE_BENEFICIARY_HASH_KEY, AgencyProfile, generate_sample, synthetic_npi
from loaders.claim_record import Claim, ClaimLine, beneficiary_key_of
from loaders.errors import LoadError
from loaders.x12_837i import ClaimProblem, read_837i, write_837i

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLES = SHARED / "x12"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x12"
KEY = b"test key"


def read(source, **options) -> tuple[list[Claim], list[ClaimProblem]]:
    results = list(read_837i(source, beneficiary_hash_key=KEY, **options))
    return [r for r in results if isinstance(r, Claim)], [r for r in results if isinstance(r, ClaimProblem)]


def read_text(text: str) -> tuple[list[Claim], list[ClaimProblem]]:
    return read(io.BytesIO(text.encode("latin-1")), path="inline.837i")


# ---------------------------------------------------------------------------------------------
# The real samples (none of them home health): what each gives.


def test_imsweb_sample_one_claim_subscriber_data_not_taken_from_other_subscriber_loops():
    claims, problems = read(SAMPLES / "imsweb_x223-test.txt")
    assert problems == []
    (claim,) = claims
    assert claim.agency_id == "1234567890"
    assert claim.claim_id == "A37YH556"
    assert claim.type_of_bill == "0111"  # CLM05 11:B:1; the sample's qualifier B is read around
    assert (claim.period_from, claim.period_through) == (date(2012, 3, 30), date(2012, 3, 30))  # DTP*434 D8
    assert claim.admission_date == date(2015, 3, 30)
    assert (claim.admission_source, claim.patient_status) == ("7", "30")
    assert claim.state == "MD"  # not AL, the state of the other payers in 2330B
    assert claim.diagnoses == ("1739",)  # ICD-9 BK, trailing empty elements ignored
    assert claim.source_segment == 25
    # The 2010BA subscriber, not the 2330A other subscribers (ABCDER1234, GDAFA1232).
    assert claim.beneficiary_key == beneficiary_key_of("123456", KEY)
    (line,) = claim.lines
    assert line == ClaimLine(1, "0300", "81099", None, (), Decimal("1"), Decimal("73.42"), date(2005, 3, 14))


def test_lfh_institutional_sample_keeps_claim_codes_and_ignores_attending_reference():
    claims, problems = read(SAMPLES / "lfh_institutional-claim.837i")
    assert problems == []
    (claim,) = claims
    assert (claim.agency_id, claim.claim_id, claim.type_of_bill, claim.state) == ("9876540809", "756048Q", "0141", "PA")
    assert claim.diagnoses == ("3669", "4019", "79431")
    assert claim.occurrence_codes == (
        ("A1", date(1926, 11, 11)),
        ("A2", date(1991, 11, 1)),
        ("B1", date(1926, 11, 11)),
        ("B2", date(1987, 1, 1)),
    )
    assert claim.value_codes == (("A2", Decimal("15.31")),)
    assert claim.condition_codes == ("09",)
    assert (claim.admission_source, claim.patient_status) == (None, "01")
    assert claim.review_tracking_number is None  # REF*1G of 2310A is not the claim's
    assert [(line.revenue_code, line.hcpcs, line.units) for line in claim.lines] == [
        ("0305", "85025", Decimal("1.00")),
        ("0730", "93005", Decimal("3.00")),
    ]


def test_lfh_out_of_network_sample_body_uses_another_component_separator():
    claims, problems = read(SAMPLES / "lfh_out-of-network-repriced-claim.837i")
    (notice,) = problems
    assert notice.claim_skipped is False
    assert (notice.segment_number, notice.segment_id, notice.element) == (20, "CLM", "CLM05")
    assert "ISA16 declares ':'" in notice.message and "'>'" in notice.message
    assert "lfh_out-of-network-repriced-claim.837i, segment 20 (CLM), element CLM05" in str(notice)
    (claim,) = claims
    assert claim.type_of_bill == "0131"
    assert claim.diagnoses == ("53081",)
    assert claim.admission_date == date(2005, 6, 17)  # DTP*435 DT 200506170800
    assert claim.state == "OH"
    assert claim.lines[0].hcpcs == "82270"


def test_lfh_ppo_sample_claim_under_the_patient_loop():
    claims, problems = read(SAMPLES / "lfh_ppo-repriced-claim.837i")
    assert [problem.claim_skipped for problem in problems] == [False]  # the same separator notice
    (claim,) = claims
    assert claim.claim_id == "456DFH43"
    # 2000C: the subscriber's member id with the patient's birth date, not 2330A's 56454566.
    assert claim.beneficiary_key == beneficiary_key_of("345U8423H\x1f19980820", KEY)
    assert claim.diagnoses == ("38181", "38900")
    assert claim.occurrence_codes == (("11", date(2005, 7, 6)),)
    assert [line.hcpcs for line in claim.lines] == ["92557", "92567"]


def test_lfh_two_claims_sample_two_subscribers():
    claims, problems = read(SAMPLES / "lfh_two-claims-single-provider.837i")
    assert problems == []
    assert [(claim.claim_id, claim.source_segment, len(claim.lines)) for claim in claims] == [
        ("756048Q", 21, 2),
        ("756049Q", 41, 1),
    ]
    assert claims[0].beneficiary_key != claims[1].beneficiary_key
    assert claims[1].diagnoses == ("30000",)


def test_lfh_835_sample_is_not_a_claim_file():
    with pytest.raises(LoadError) as caught:
        read(SAMPLES / "lfh_medicare-part-a.835")
    error = caught.value
    assert error.path.endswith("lfh_medicare-part-a.835")
    assert error.field == "ST01"
    assert "segment 3 (ST)" in str(error) and "'835'" in str(error)


def test_no_member_id_or_name_in_any_output():
    for sample in SAMPLES.glob("*.837i"):
        claims, problems = read(sample)
        text = repr(claims) + "".join(str(problem) for problem in problems)
        for secret in ("030005074", "34902390F", "345U8423H", "DOE", "JONES", "SMITH"):
            assert secret not in text


# ---------------------------------------------------------------------------------------------
# Our fixture: CRLF, two interchanges with different delimiters, sub-loops that must not leak.


def test_fixture_two_interchanges_with_their_own_delimiters():
    claims, problems = read(FIXTURES / "home-health-two-interchanges.837i", quality_data_submitted=False)
    assert problems == []
    first, second = claims
    assert first == Claim(
        agency_id="9000000015",
        claim_id="HH-1",
        type_of_bill="0329",
        period_from=date(2023, 1, 5),
        period_through=date(2023, 2, 3),
        admission_date=date(2023, 1, 5),
        admission_source="1",
        patient_status="30",
        hipps="1FC11",
        cbsa="17140",
        fips_county="39061",
        quality_data_submitted=False,
        review_tracking_number="OH230015000001",  # not 2310A's or 2420's REF*G1
        state="OH",  # not the subscriber's N4
        diagnoses=("I5022", "I10", "E119"),
        condition_codes=("47",),
        occurrence_codes=(("50", date(2023, 1, 6)),),
        value_codes=(("61", Decimal("17140")), ("85", Decimal("39061"))),
        beneficiary_key=beneficiary_key_of("SYN00150000001", KEY),  # not 2330A's member
        source_segment=15,
        lines=(
            ClaimLine(1, "0023", None, "1FC11", (), Decimal(0), Decimal(0), date(2023, 1, 6)),
            ClaimLine(2, "0551", "G0299", None, (), Decimal(4), Decimal(165), date(2023, 1, 6)),
            ClaimLine(3, "0551", "Q5001", None, (), Decimal(1), Decimal("0.01"), date(2023, 1, 6)),
            ClaimLine(4, "0421", "G0151", None, ("GP",), Decimal(3), Decimal(202), date(2023, 1, 10)),
        ),
    )
    assert first.source_segment == 15
    assert (second.type_of_bill, second.hipps, second.state, second.agency_id) == ("032A", "3LC31", "TX", "9000000023")
    assert second.source_segment == 58


def test_reading_streams_in_chunks(monkeypatch):
    data = (FIXTURES / "home-health-two-interchanges.837i").read_bytes()
    for size in (1, 7, 64, 1 << 20):
        monkeypatch.setattr(x12, "_CHUNK_CHARACTERS", size)
        claims, problems = read(io.BytesIO(data))
        assert [claim.claim_id for claim in claims] == ["HH-1", "HH-2"] and problems == []


def test_reading_is_lazy(monkeypatch):
    monkeypatch.setattr(x12, "_CHUNK_CHARACTERS", 256)
    data = (FIXTURES / "home-health-two-interchanges.837i").read_bytes()
    stream = io.BytesIO(data)
    first = next(read_837i(stream, beneficiary_hash_key=KEY))
    assert first.claim_id == "HH-1"
    assert stream.tell() < len(data)


def test_text_streams_and_a_last_segment_without_terminator():
    text = (FIXTURES / "home-health-two-interchanges.837i").read_text("latin-1").rstrip().removesuffix("!")
    claims, problems = read(io.StringIO(text))
    assert len(claims) == 2 and problems == []


# ---------------------------------------------------------------------------------------------
# Failure modes: the file (LoadError) and one claim (ClaimProblem, the rest still loads).

ENVELOPE_START = (
    "ISA*00*          *00*          *ZZ*S              *ZZ*R              *230101*1200*^*00501*000000001*0*T*:~\n"
    "GS*HC*S*R*20230101*1200*1*X*005010X223A2~\n"
    "ST*837*0001*005010X223A2~\n"
    "HL*1**20*1~\nNM1*85*2*AGENCY*****XX*9000000015~\nN4*CITY*OH*43215~\n"
)
ENVELOPE_END = "SE*1*0001~\nGE*1*1~\nIEA*1*000000001~\n"


def claim_text(claim_id: str, *, clm05="32:A:9", period="DTP*434*RD8*20230101-20230130~", sv2="SV2*0551*HC:G0299*100*UN*4~"):
    return (
        f"HL*{claim_id}*1*22*0~\nSBR*P*18*******MA~\nNM1*IL*1*DOE*JANE****MI*MEMBER{claim_id}~\n"
        f"CLM*{claim_id}*100***{clm05}*Y*A*Y*Y~\n{period}\nHI*ABK:I110~\n"
        f"LX*1~\nSV2*0023*HP:1FC11*0*UN*0~\nLX*2~\n{sv2}\nDTP*472*D8*20230105~\n"
    )


def one_bad_claim(**bad) -> tuple[list[Claim], ClaimProblem]:
    claims, problems = read_text(ENVELOPE_START + claim_text("1") + claim_text("2", **bad) + claim_text("3") + ENVELOPE_END)
    assert [claim.claim_id for claim in claims] == ["1", "3"]
    (problem,) = problems
    assert problem.path == "inline.837i" and problem.claim_id == "2" and problem.claim_skipped
    assert "MEMBER2" not in str(problem) and "DOE" not in str(problem)
    return claims, problem


def test_good_inline_file_reads():
    claims, problems = read_text(ENVELOPE_START + claim_text("1") + ENVELOPE_END)
    assert problems == [] and claims[0].hipps == "1FC11" and claims[0].source_segment == 10


def test_claim_without_clm05_is_skipped():
    _, problem = one_bad_claim(clm05="")
    assert (problem.segment_number, problem.segment_id, problem.element) == (21, "CLM", "CLM05")
    assert str(problem).startswith("inline.837i, segment 21 (CLM), element CLM05, claim 2: ")


def test_claim_with_bad_frequency_is_skipped():
    _, problem = one_bad_claim(clm05="32:A")
    assert (problem.segment_id, problem.element) == ("CLM", "CLM05-3")


def test_claim_with_impossible_date_is_skipped():
    _, problem = one_bad_claim(period="DTP*434*RD8*20230230-20230301~")
    assert (problem.segment_number, problem.segment_id, problem.element) == (22, "DTP", "DTP03")
    assert "'20230230' does not exist" in problem.message


def test_claim_with_unknown_date_format_is_skipped():
    _, problem = one_bad_claim(period="DTP*434*XX*20230101~")
    assert (problem.segment_id, problem.element) == ("DTP", "DTP02")


def test_claim_without_statement_period_is_skipped():
    _, problem = one_bad_claim(period="DTP*999*D8*20230101~")
    assert (problem.segment_number, problem.segment_id, problem.element) == (21, "CLM", "DTP*434")


def test_service_line_without_revenue_code_is_skipped():
    _, problem = one_bad_claim(sv2="SV2**HC:G0299*100*UN*4~")
    assert (problem.segment_number, problem.segment_id, problem.element) == (27, "SV2", "SV201")
    assert "revenue code is missing" in problem.message


def test_service_line_with_bad_charge_is_skipped():
    _, problem = one_bad_claim(sv2="SV2*0551*HC:G0299*1O0*UN*4~")
    assert (problem.segment_id, problem.element) == ("SV2", "SV203")


def test_service_line_without_units_is_skipped():
    _, problem = one_bad_claim(sv2="SV2*0551*HC:G0299*100*UN~")
    assert (problem.segment_id, problem.element) == ("SV2", "SV205")


def test_value_code_61_that_is_not_a_cbsa_is_skipped():
    bad = "SV2*0551*HC:G0299*100*UN*4~\nHI*BE:61:::12.5~"  # an HI in 2400 is ignored ...
    claims, problems = read_text(ENVELOPE_START + claim_text("1", sv2=bad) + ENVELOPE_END)
    assert problems == [] and claims[0].value_codes == ()
    period = "DTP*434*RD8*20230101-20230130~\nHI*BE:61:::12.5~"  # ... one in 2300 is read
    _, problem = one_bad_claim(period=period)
    assert (problem.segment_id, problem.element) == ("HI", "HI01-5")


def test_empty_file_is_a_load_error():
    with pytest.raises(LoadError, match="inline.837i: the file is empty"):
        read_text("  \r\n")


def test_file_that_is_not_x12_is_a_load_error():
    with pytest.raises(LoadError, match="does not begin with an ISA segment") as caught:
        read_text("agency_id,claim_id\n1,2\n")
    assert caught.value.path == "inline.837i"


def test_truncated_file_is_a_load_error():
    text = ENVELOPE_START + claim_text("1") + ENVELOPE_END
    with pytest.raises(LoadError, match="no IEA, the file is truncated") as caught:
        read_text(text[: text.index("GE*")])
    assert caught.value.field == "IEA"


def test_file_cut_inside_isa_is_a_load_error():
    for text in ("ISA", "ISA*00*          *00*"):
        with pytest.raises(LoadError, match=r"segment 1 \(ISA\): (the file ends inside ISA|fewer than 16 elements)"):
            read_text(text)


def test_interchange_without_iea_before_the_next_is_a_load_error():
    fixture = (FIXTURES / "home-health-two-interchanges.837i").read_text("latin-1")
    text = fixture.replace("IEA*1*000000001~", "")
    with pytest.raises(LoadError, match="a new ISA begins before the IEA of interchange 1") as caught:
        read_text(text)
    assert caught.value.field == "IEA"


def test_data_after_the_last_interchange_is_a_load_error():
    text = ENVELOPE_START + claim_text("1") + ENVELOPE_END + "GS*HC*S*R~"
    with pytest.raises(LoadError, match="data after the IEA of interchange 1 is not another interchange"):
        read_text(text)


def test_professional_claims_are_a_load_error():
    text = (ENVELOPE_START + claim_text("1") + ENVELOPE_END).replace("005010X223A2", "005010X222A1")
    with pytest.raises(LoadError, match=r"segment 3 \(ST\): implementation guide '005010X222A1'") as caught:
        read_text(text)
    assert caught.value.field == "ST03"


def test_isa_with_a_letter_for_component_separator_is_a_load_error():
    text = (ENVELOPE_START + claim_text("1") + ENVELOPE_END).replace("*T*:~", "*T*X~", 1)
    with pytest.raises(LoadError, match="ISA16 'X' is not a usable component separator") as caught:
        read_text(text)
    assert caught.value.field == "ISA16"


def test_empty_hash_key_is_refused():
    with pytest.raises(ValueError):
        list(read_837i(io.BytesIO(b""), beneficiary_hash_key=b""))


# ---------------------------------------------------------------------------------------------
# Writing: parse(write(x)) == x.

PROFILE = AgencyProfile(
    agency_id=synthetic_npi(15), state="OH", cbsa="17140", fips_county="39061", periods=60, review_choice_option=1
)


def test_generated_claims_round_trip_through_837i():
    sample = generate_sample(PROFILE, year=2023, seed=11)
    stream = io.StringIO()
    write_837i(sample.claims, stream, member_ids=sample.member_ids)
    claims, problems = read(io.StringIO(stream.getvalue()))
    assert problems == []
    rekeyed = [claim for claim in read_837i(io.StringIO(stream.getvalue()), beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)]
    assert rekeyed == list(sample.claims)
    assert [claim.beneficiary_key for claim in claims] != [claim.beneficiary_key for claim in sample.claims]
    assert all(claim.source_segment > 0 for claim in claims)


def test_writing_is_deterministic_and_splits_transaction_sets(monkeypatch):
    monkeypatch.setattr(x12, "CLAIMS_PER_TRANSACTION_SET", 7)
    sample = generate_sample(PROFILE, year=2023, seed=11)
    texts = []
    for _ in range(2):
        stream = io.StringIO()
        write_837i(sample.claims, stream, member_ids=sample.member_ids)
        texts.append(stream.getvalue())
    assert texts[0] == texts[1]
    assert texts[0].count("\nST*837*") == 9  # 60 claims, 7 a set
    assert "GE*9*1~" in texts[0]
    back = list(read_837i(io.StringIO(texts[0]), beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY))
    assert back == list(sample.claims)


def test_writer_refuses_what_it_cannot_write():
    claim = generate_sample(PROFILE, year=2023, seed=1).claims[0]
    with pytest.raises(ValueError, match="no member id"):
        write_837i([claim], io.StringIO(), member_ids={})
    member_ids = {claim.beneficiary_key: "M1"}
    with pytest.raises(ValueError, match="delimiter"):
        write_837i([_replace(claim, claim_id="A*B")], io.StringIO(), member_ids=member_ids)
    with pytest.raises(ValueError, match="type of bill"):
        write_837i([_replace(claim, type_of_bill="329")], io.StringIO(), member_ids=member_ids)


def _replace(claim: Claim, **changes) -> Claim:
    from dataclasses import replace

    return replace(claim, **changes)


codes = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=7)
days = st.dates(min_value=date(2019, 1, 1), max_value=date(2025, 12, 31))
def digits(count: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=count, max_size=count)


money = st.decimals(min_value=0, max_value=99999, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def claim_lines(draw, number: int) -> ClaimLine:
    kind = draw(st.sampled_from(["hcpcs", "hipps", "none"]))
    code = draw(codes)
    return ClaimLine(
        line_number=number,
        revenue_code=draw(digits(4)),
        hcpcs=code if kind == "hcpcs" else None,
        hipps=code if kind == "hipps" else None,
        modifiers=draw(st.lists(codes, max_size=4).map(tuple)) if kind != "none" else (),
        units=draw(st.decimals(min_value=0, max_value=999, places=0, allow_nan=False, allow_infinity=False)),
        charge=draw(money),
        service_date=draw(st.none() | days),
    )


@st.composite
def claims(draw) -> tuple[Claim, str]:
    member_id = draw(codes)
    period_from = draw(days)
    line_count = draw(st.integers(min_value=1, max_value=5))
    lines = tuple(draw(claim_lines(number)) for number in range(1, line_count + 1))
    cbsa = draw(st.none() | digits(5))
    county = draw(st.none() | digits(5))
    value_codes = draw(st.lists(st.tuples(st.sampled_from(["A1", "17", "80"]), money), max_size=3))
    if cbsa:
        value_codes.append(("61", Decimal(int(cbsa))))
    if county:
        value_codes.append(("85", Decimal(int(county))))
    claim = Claim(
        agency_id=draw(digits(10)),
        claim_id=draw(codes),
        type_of_bill="032" + draw(st.sampled_from("9780A")),
        period_from=period_from,
        period_through=draw(st.dates(min_value=period_from, max_value=date(2025, 12, 31))),
        admission_date=draw(st.none() | days),
        admission_source=draw(st.none() | st.sampled_from("1245")),
        patient_status=draw(st.none() | st.sampled_from(["01", "06", "30"])),
        hipps=next((line.hipps for line in lines if line.revenue_code == "0023" and line.hipps), None),
        cbsa=cbsa,
        fips_county=county,
        quality_data_submitted=True,
        review_tracking_number=draw(st.none() | codes),
        state=draw(st.none() | st.sampled_from(["OH", "TX", "CA"])),
        diagnoses=draw(st.lists(codes, max_size=15).map(tuple)),
        condition_codes=draw(st.lists(codes, max_size=14).map(tuple)),
        occurrence_codes=draw(st.lists(st.tuples(codes, days), max_size=14).map(tuple)),
        value_codes=tuple(value_codes),
        beneficiary_key=beneficiary_key_of(member_id, KEY),
        source_segment=0,
        lines=lines,
    )
    return claim, member_id


@settings(max_examples=40, deadline=None)
@given(st.lists(claims(), min_size=1, max_size=4))
def test_any_claim_round_trips_through_837i(drawn):
    written = [claim for claim, _ in drawn]
    member_ids = {claim.beneficiary_key: member for claim, member in drawn}
    stream = io.StringIO()
    write_837i(written, stream, member_ids=member_ids, created=datetime(2024, 1, 1, 8, 30))
    claims_read, problems = read(io.StringIO(stream.getvalue()))
    assert problems == []
    assert claims_read == written
