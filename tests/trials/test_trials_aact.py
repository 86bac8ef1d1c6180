"""AACT ``studies`` rows: the AACT-derived table of 1,200 US pain trials (snapshot 2020-06-30).

Expected values are read from the raw file with the csv module (cp1252 as its SOURCES.md
says), never from our reader: ids, phases, statuses, start years, enrollments, sponsor
classes; then the survey of the pain neuromodulation trials it holds is checked against the
same raw cells.

Dates: AACT's ``start_date`` is derived from the registry's text; a month-only text becomes the
month's last day. This extract's ``start_month_year`` was turned into a date by its authors (R):
``2000-03-01`` beside ``start_date`` ``2000-03-31`` for the registry's "March 2000" (the
AllPublicXML record of NCT00000409 says ``<start_date>March 2000``). The 12 trials of this file
that other real exports in shared/data also hold (10 in the AllPublicXML tar, 1 legacy XML
file, 1 in the herniated-disc v2 download) give the dates those exports write.
"""

from __future__ import annotations

import calendar
import collections
import csv
import datetime as dt
import gzip
import io
import json
import re
import tarfile

import pytest

from neuromodmap.trials._readers.aact import read_rows, row_to_trial
from neuromodmap.trials.classify import CLASSIFIER_VERSION, classify
from neuromodmap.trials.io import detect_format, read_trials
from neuromodmap.trials.store import TrialStore
from neuromodmap.trials.survey import survey

AACT = "aact_derived_pain_trials_us_anhkhoavo/All_pain_master_file.csv.gz"
PHASE = {"Phase 1": ["PHASE1"], "Phase 2": ["PHASE2"], "Phase 3": ["PHASE3"], "Phase 4": ["PHASE4"],
         "Phase 1/Phase 2": ["PHASE1", "PHASE2"], "Phase 2/Phase 3": ["PHASE2", "PHASE3"],
         "Early Phase 1": ["EARLY_PHASE1"], "N/A": ["NA"]}
STATUS = {"Completed": "COMPLETED", "Terminated": "TERMINATED", "Active, not recruiting": "ACTIVE_NOT_RECRUITING",
          "Unknown status": "UNKNOWN", "Recruiting": "RECRUITING", "Withdrawn": "WITHDRAWN",
          "Enrolling by invitation": "ENROLLING_BY_INVITATION", "Suspended": "SUSPENDED",
          "Not yet recruiting": "NOT_YET_RECRUITING"}
SPONSOR = {"Other": "OTHER", "Industry": "INDUSTRY", "U.S. Fed": "FED", "NIH": "NIH"}


@pytest.fixture(scope="module")
def raw(trials_dir):
    text = gzip.open(trials_dir / AACT).read().decode("cp1252", "replace")
    return {row["nct_id"]: row for row in csv.DictReader(io.StringIO(text))}


@pytest.fixture(scope="module")
def records(trials_dir):
    problems = []
    return {r.trial.registry_id: r for r in read_trials(trials_dir / AACT, problems=problems)}, problems


def test_detected_and_every_trial_read(trials_dir, raw, records):
    assert detect_format(trials_dir / AACT) == "aact_csv_gz"
    got, problems = records
    assert set(got) == set(raw) and len(raw) == 1200
    # R's missing value "NA" (the enrollment of NCT00262678) is a missing field, not a bad one
    assert problems == []
    assert got["NCT00262678"].trial.enrollment is None and got["NCT00262678"].trial.title


def test_fields_match_the_raw_cells(raw, records):
    got, _ = records
    kept = collections.Counter()
    for rid, row in raw.items():
        trial = got[rid].trial
        kept["phase"] += trial.phases == PHASE.get(row["phase"], [])
        kept["status"] += trial.overall_status == STATUS[row["overall_status"]]
        kept["start"] += (trial.start_date, trial.start_date_precision) == _registry_date(row, "start")
        kept["completion"] += (trial.completion_date, trial.completion_date_precision) == _registry_date(row, "completion")
        enrol = row["enrollment"]
        kept["enrollment"] += trial.enrollment == (int(float(enrol)) if enrol not in ("", "NA") else None)
        kept["sponsor_class"] += trial.sponsor_class == SPONSOR[row["agency_class"]]
        kept["country"] += trial.countries == [row["Countries_name"]]
        kept["has_results"] += trial.has_results == bool(row["results_first_posted_date"] not in ("", "NA"))
        kept["as_of"] += got[rid].as_of in (dt.date(2020, 6, 30), dt.date(2020, 7, 10), dt.date(2020, 7, 2))
    assert kept == {k: 1200 for k in kept}


def _registry_date(row: dict[str, str], prefix: str) -> tuple[dt.date | None, str | None]:
    """(date, precision) the registry wrote, from the raw cells with datetime and calendar:
    a month-year cell on the 1st beside an AACT date on that month's last day is month-only."""
    text, derived = row[f"{prefix}_month_year"], row[f"{prefix}_date"]
    if text in ("", "NA"):
        return None, None
    day = dt.date.fromisoformat(text)
    aact = dt.date.fromisoformat(derived)
    if day.day == 1 and aact != day and (aact.year, aact.month) == (day.year, day.month) \
            and aact.day == calendar.monthrange(aact.year, aact.month)[1]:
        return day, "month"
    return day, "day"


def test_month_only_dates_are_the_first_of_the_month(raw, records):
    """Counted from the raw cells: 996 of the 1,200 start dates and 921 of the 1,196 completion
    dates are month-only (AACT's date the month's last day, the month-year cell its 1st); they
    are stored as the 1st at precision month, the other (whole-day) dates at day."""
    got, problems = records
    assert problems == []
    precision = collections.Counter()
    for row in raw.values():
        for prefix in ("start", "completion"):
            derived = row[f"{prefix}_date"]
            if derived in ("", "NA"):
                continue
            last = dt.date.fromisoformat(derived)
            month_only = last.day == calendar.monthrange(last.year, last.month)[1] and \
                row[f"{prefix}_month_year"] == derived[:8] + "01"
            precision[prefix, "month" if month_only else "day"] += 1
    assert precision == {("start", "month"): 996, ("start", "day"): 204,
                         ("completion", "month"): 921, ("completion", "day"): 275}
    stored = collections.Counter((p, getattr(r.trial, f"{p}_date_precision")) for r in got.values()
                                 for p in ("start", "completion") if getattr(r.trial, f"{p}_date"))
    assert stored == precision
    trial = got["NCT00000409"].trial  # "March 2000" to "April 2015" in the registry's XML
    assert (trial.start_date, trial.start_date_precision) == (dt.date(2000, 3, 1), "month")
    assert (trial.completion_date, trial.completion_date_precision) == (dt.date(2015, 4, 1), "month")


def _other_exports(trials_dir, ids: set[str]) -> dict[str, list[tuple[str, bytes]]]:
    """The legacy XML records of ``ids`` in the other real exports (the AllPublicXML tar, the
    legacy XML folder), each as (which export, the record's bytes)."""
    out: dict[str, list] = collections.defaultdict(list)
    tar = trials_dir / "ctgov_legacy_xml_allpublicxml_subset_reesewang25" / \
        "AllPublicXML_subset_NCT0000xxxx_NCT0046xxxx_NCT0049xxxx.tar.gz"
    with tarfile.open(tar) as tf:
        for member in tf:
            m = re.search(r"(NCT\d{8})\.xml$", member.name)
            if m and m.group(1) in ids:
                out[m.group(1)].append(("allpublicxml_tar", tf.extractfile(member).read()))
    for path in sorted((trials_dir / "ctgov_legacy_xml").glob("NCT*.xml")):
        if path.stem in ids:
            out[path.stem].append(("legacy_xml_file", path.read_bytes()))
    return out


def test_dates_equal_those_of_other_exports_of_the_same_trial(trials_dir, tmp_path, records):
    """The same trial in other real exports (AllPublicXML tar and legacy XML file: ``<start_date>
    March 2000``; the v2 download: ``"date": "2000-03"``) has the same start and completion date
    and precision as its AACT row. The other exports' texts are read here with datetime."""
    got, _ = records
    xml = _other_exports(trials_dir, set(got))
    pairs = []
    for rid, found in xml.items():
        for where, data in found:
            path = tmp_path / f"{where}_{rid}.xml"
            path.write_bytes(data)
            text = data.decode("utf-8")
            for tag in ("start_date", "completion_date"):
                raw_text = re.search(rf"<{tag}[^>]*>([^<]+)</{tag}>", text).group(1)
                # every overlapping record writes month-only dates ("March 2000")
                pairs.append((rid, where, tag, dt.datetime.strptime(raw_text, "%B %Y").date(), "month"))
    v2 = trials_dir / "ctgov_v2_json_download_herniated_disc_koy570" / "ctg-studies.json.gz"
    for study in json.loads(gzip.decompress(v2.read_bytes())):
        rid = study["protocolSection"]["identificationModule"]["nctId"]
        if rid in got:
            status = study["protocolSection"]["statusModule"]
            for key, tag in (("startDateStruct", "start_date"), ("completionDateStruct", "completion_date")):
                pairs.append((rid, "v2_download", tag, dt.datetime.strptime(status[key]["date"], "%Y-%m").date(), "month"))
    # 10 in the tar, NCT01174550 as a legacy XML file, NCT00000410 also in the v2 download
    assert len({(rid, where) for rid, where, *_ in pairs}) == 12
    other = {r.trial.registry_id: r.trial for path in sorted(tmp_path.glob("*.xml")) for r in read_trials(path)}
    other.update({r.trial.registry_id + "/v2": r.trial for r in read_trials(v2)})
    for rid, where, tag, day, precision in pairs:
        aact = got[rid].trial
        assert (getattr(aact, tag), getattr(aact, f"{tag}_precision")) == (day, precision), (rid, where, tag)
        mine = other[rid + "/v2" if where == "v2_download" else rid]
        assert (getattr(mine, tag), getattr(mine, f"{tag}_precision")) == (day, precision), (rid, where, tag)


@pytest.mark.parametrize(("text", "expected"), [
    ("March 2000", (dt.date(2000, 3, 1), "month")),     # AACT flat files up to 2017: the XML's text
    ("2000-03", (dt.date(2000, 3, 1), "month")),        # the API v2 spelling of the same month
    ("2000", (dt.date(2000, 1, 1), "year")),
    ("March 31, 2000", (dt.date(2000, 3, 31), "day")),  # a whole date: AACT's date is the same day
    ("2000-03-31", (dt.date(2000, 3, 31), "day")),
])
def test_month_year_text_as_aact_flat_files_write_it(raw, text, expected):
    """NCT00000409's real row with its month-year cell in the spellings AACT's own flat files
    use (its AllPublicXML record says ``March 2000``; AACT's ``start_date`` 2000-03-31 kept)."""
    row = {k.lower(): ("" if v == "NA" else v) for k, v in raw["NCT00000409"].items()}
    row["start_month_year"] = text
    trial = row_to_trial(row, [])
    assert (trial.start_date, trial.start_date_precision) == expected


def test_a_bad_date_costs_only_its_field(trials_dir):
    """A damaged date cell on real rows: the record is kept, the field is empty (or taken from
    the other, good cell) and each bad cell is reported with row, field, id and value."""
    text = gzip.open(trials_dir / AACT).read().decode("cp1252", "replace")
    rows = list(csv.DictReader(io.StringIO(text)))[:3]
    rows[0]["start_month_year"] = rows[0]["start_date"] = "sometime in 2019"   # both bad: emptied
    rows[1]["start_month_year"] = "Mar-16"      # month text unreadable: AACT's date is kept (day)
    rows[2]["completion_date"] = "2015-13-45"   # AACT's date bad (reported), the month-year cell is good
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    problems: list = []

    def problem(location, reason, field=None, registry_id=None, action=""):
        problems.append((location, field, registry_id, reason, action))

    got = {r.trial.registry_id: r.trial for r in read_rows(io.BytesIO(buf.getvalue().encode()), "x.csv", problem)}
    assert list(got) == [r["nct_id"] for r in rows]
    first, second, third = (got[r["nct_id"]] for r in rows)
    assert first.start_date is None and first.start_date_precision is None
    assert first.completion_date is not None and first.title
    assert second.start_date == dt.date.fromisoformat(rows[1]["start_date"]) and second.start_date_precision == "day"
    assert third.completion_date == dt.date.fromisoformat(rows[2]["completion_month_year"])
    # without AACT's month-end date, R's 2015-04-01 cannot be told from a whole date: day
    assert third.completion_date_precision == "day"
    assert [(loc, field, rid) for loc, field, rid, _, _ in problems] == [
        ("row 2", "start_date", rows[0]["nct_id"]), ("row 2", "start_month_year", rows[0]["nct_id"]),
        ("row 3", "start_month_year", rows[1]["nct_id"]), ("row 4", "completion_date", rows[2]["nct_id"])]
    assert [bad in p[3] for p, bad in zip(problems, ["sometime in 2019", "sometime in 2019", "Mar-16", "2015-13-45"],
                                          strict=True)] == [True] * 4
    assert {p[4] for p in problems} == {"field emptied"}


@pytest.fixture(scope="module")
def pain_survey(tmp_path_factory, trials_dir):
    db = tmp_path_factory.mktemp("aact") / "a.duckdb"
    with TrialStore(db) as store:
        store.import_files([trials_dir / AACT], progress=False)
        store.write_labels((classify(t) for t in store.iter_trials()), classifier_version=CLASSIFIER_VERSION)
        trials, labels, runs = store.trials_df(), store.labels_df(), store.import_runs_df()
    return survey(trials, labels, tmp_path_factory.mktemp("aact_survey"), import_runs=runs), labels


def test_pain_survey_tables_match_the_raw_cells(raw, pain_survey):
    result, labels = pain_survey
    nm = labels[labels["neuromod"]]
    pain = nm[nm["indication"].isin(["pain", "both"])]
    assert len(pain) >= 30  # SOURCES.md: a keyword grep finds 48 pain neuromodulation trials
    phase = collections.Counter(p for rid in pain["registry_id"] for p in PHASE.get(raw[rid]["phase"], ["not reported"]))
    table = result.table("phase_by_indication").set_index("phase")
    assert {v: int(table.loc[v, ["pain", "both"]].sum() if "both" in table else table.loc[v, "pain"])
            for v in table.index if (table.loc[v, "pain"] or ("both" in table and table.loc[v, "both"]))} == phase
    sponsor = collections.Counter(SPONSOR[raw[rid]["agency_class"]] for rid in nm["registry_id"])
    table = result.table("sponsor_class_by_indication").set_index("sponsor_class")
    assert table["all trials"].to_dict() == sponsor
    years = collections.Counter(int(raw[rid]["start_date"][:4]) for rid in nm["registry_id"])
    trend = result.table("start_year_by_indication").set_index("start_date")
    assert trend.sum(axis=1).to_dict() == years
    assert result.table("continent")["continent"].tolist() == ["North America"]
