"""CMS's own change reports (a quarter's trans_alpha.xlsx) stored as the source they are."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from kb import ingest
from kb.models import HcpcsChangeReportRow, Release
from loaders.errors import LoadError
from loaders.hcpcs_changes import is_change_report
from tests.conftest import HCPCS_DIR

JULY = HCPCS_DIR / "2020-07"


def test_a_change_report_is_recognised_by_its_content(tmp_path):
    renamed = tmp_path / "whatever.bin"
    renamed.write_bytes((JULY / "trans_alpha.xlsx").read_bytes())
    assert is_change_report(renamed)
    assert not is_change_report(JULY / "anweb.xlsx")
    assert not is_change_report(HCPCS_DIR / "2019-Alpha-Numeric-HCPCS-File.zip")


def test_a_change_report_takes_the_dates_of_the_release_beside_it(engine):
    report = ingest.load_files(engine, [JULY])
    assert not report.skipped
    with Session(engine) as session:
        (change_report,) = session.exec(select(Release).where(Release.source == "hcpcs-change-report")).all()
        (release,) = session.exec(select(Release).where(Release.source == "hcpcs")).all()
        rows = session.exec(select(HcpcsChangeReportRow).where(HcpcsChangeReportRow.release_id == change_report.id)).all()
    assert (change_report.effective_date, change_report.published_date) == (release.effective_date, release.published_date)
    assert change_report.effective_date == date(2020, 7, 1) and change_report.label == "CMS change report, 2020 JUL"
    assert "anweb.xlsx" in change_report.effective_date_basis
    assert len(rows) == change_report.record_count == 7158
    assert change_report.notes is None  # the by-code sheet lists each code once (the action sheet repeats CS)
    by_code = {row.code: row for row in rows}
    assert by_code["G0151"].action_code in "ABCDFNPRST" and by_code["G0151"].source_line > 1


def test_loading_it_again_changes_nothing_and_alone_it_is_refused(engine):
    ingest.load_files(engine, [JULY])
    with engine.connect() as connection:
        before = connection.execute(sa.select(sa.func.count()).select_from(HcpcsChangeReportRow)).scalar_one()
    again = ingest.load_files(engine, [JULY / "trans_alpha.xlsx"])
    assert [summary.already_loaded for summary in again.stored] == [True]
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(HcpcsChangeReportRow)).scalar_one() == before


def test_a_change_report_without_its_release_is_an_error_naming_the_file(engine):
    with pytest.raises(LoadError) as error:
        ingest.load_files(engine, [JULY / "trans_alpha.xlsx"])
    assert error.value.path.endswith("trans_alpha.xlsx")
    assert "names no date" in error.value.message and "load the folder" in error.value.message
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Release.__table__)).scalar_one() == 0
