"""Fixture builders shared by the trials import tests (no tests here).

Everything is built from the real records in ``shared/data/trials``; ICTRP exports, which
have no offline sample, follow the field names of the WHO ICTRP export (trials/SOURCES.md).
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import tarfile
import zipfile
from pathlib import Path

ICTRP_FIELDS = (
    "Internal_Number", "TrialID", "Last_Refreshed_on", "Public_title", "Scientific_title",
    "Acronym", "Primary_sponsor", "Date_registration", "Source_Register", "web_address",
    "Recruitment_Status", "Target_size", "Study_type", "Study_design", "Phase", "Countries",
    "Condition", "Intervention", "Primary_outcome", "Secondary_ID",
)


def corpus_lines(corpus_path: Path, n: int) -> list[bytes]:
    """The first ``n`` raw lines of the real 2018 corpus (with their newline)."""
    with gzip.open(corpus_path, "rb") as fh:
        return list(itertools.islice(fh, n))


def v2_files(trials_dir: Path) -> list[Path]:
    return sorted((trials_dir / "ctgov_v2_json").glob("NCT*.json"))


def xml_files(trials_dir: Path) -> list[Path]:
    return sorted((trials_dir / "ctgov_legacy_xml").glob("NCT*.xml"))


def v2_studies(trials_dir: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in v2_files(trials_dir)]


def write_zip(path: Path, files: list[Path]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.name)
    return path


def ictrp_record(**fields: str) -> dict[str, str]:
    return {k: fields.get(k, "") for k in ICTRP_FIELDS}


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_ictrp_xml(path: Path, records: list[dict[str, str]], encoding: str = "utf-8") -> Path:
    body = []
    for rec in records:
        body.append("  <Trial>")
        for key, value in rec.items():
            body.append(f"    <{key}>{_xml_escape(value)}</{key}>")
        body.append("  </Trial>")
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<Trials_downloaded_from_ICTRP>\n'
        + "\n".join(body)
        + "\n</Trials_downloaded_from_ICTRP>\n"
    )
    path.write_bytes(text.encode(encoding))
    return path


def write_ictrp_csv(path: Path, records: list[dict[str, str]], header: bool = True, encoding="utf-8") -> Path:
    import csv
    import io

    buf = io.StringIO()
    columns = [k.replace("_", " ") for k in ICTRP_FIELDS]
    writer = csv.writer(buf)
    if header:
        writer.writerow(columns)
    for rec in records:
        writer.writerow([rec.get(k, "") for k in ICTRP_FIELDS])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def sample_ictrp() -> list[dict[str, str]]:
    """Five ICTRP records shaped like real exports (ids of real CT.gov fixture trials)."""
    return [
        # CT.gov trial re-exported by ICTRP: TrialID is its NCT id
        ictrp_record(
            Internal_Number="1", TrialID="NCT02552212", Source_Register="ClinicalTrials.gov",
            Public_title="Multicenter Study Evaluating Certolizumab Pegol Compared to Placebo in Subjects With axSpA Without X-ray Evidence of AS",
            Scientific_title="Phase 3 study of certolizumab pegol in axSpA",
            Date_registration="15/09/2015", Recruitment_Status="Not recruiting",
            Phase="Phase 3", Countries="United States;Australia;Bulgaria",
            Condition="Axial Spondyloarthritis;Nr-axSpA", Target_size="317",
            Study_design="Allocation: Randomized. Intervention model: Parallel Assignment. Masking: Quadruple (Participant, Care Provider, Investigator, Outcomes Assessor). Primary purpose: Treatment.",
            Intervention="Drug: Certolizumab Pegol;Other: Placebo",
            web_address="https://clinicaltrials.gov/show/NCT02552212",
        ),
        # the same trial in the EU register (country suffix), no Secondary_ID
        ictrp_record(
            Internal_Number="2", TrialID="EUCTR2015-001894-41-DE", Source_Register="EU Clinical Trials Register",
            Public_title="A study to test certolizumab pegol in axial spondyloarthritis",
            Scientific_title="Phase 3, Multicenter, Randomized, Placebo-Controlled, Double-Blind Study &amp; more",
            Date_registration="2015-08-20", Recruitment_Status="Authorised-recruitment may be ongoing or finished",
            Phase="Human pharmacology (Phase I): no<br>Therapeutic confirmatory (Phase III): yes",
            Countries="Germany;Poland", Target_size="Target condition:200;Difficulty condition:117",
        ),
        # an ISRCTN record naming a CT.gov trial in Secondary_ID
        ictrp_record(
            Internal_Number="3", TrialID="ISRCTN12345678", Source_Register="ISRCTN",
            Public_title="Primaquine with dihydroartemisinin-piperaquine in G6PD deficient males &lt;br&gt; Gambia",
            Secondary_ID="SAFEPRIM-II;NCT02654730", Date_registration="05/01/2016",
            Condition="Malaria<br>G6PD deficiency", Phase="Phase 2/Phase 3", Countries="Gambia",
            Study_type="Interventional", Last_Refreshed_on="11 May 2018",
        ),
        # a ChiCTR record whose title nearly matches a CT.gov trial but no id links them
        ictrp_record(
            Internal_Number="4", TrialID="ChiCTR2000012345", Source_Register="ChiCTR",
            Public_title="Histologic evaluation of tissue following Lutronic system exposure",
            Phase="New Treatment Measure Clinical Study", Date_registration="20200320",
            Intervention="Laser exposure", Countries="China",
        ),
        # unrelated
        ictrp_record(
            Internal_Number="5", TrialID="ACTRN12618000123456", Source_Register="ANZCTR",
            Public_title="Transcranial magnetic stimulation for treatment-resistant depression",
            Condition="Depression;Treatment-resistant depression", Phase="Not Applicable",
            Intervention="Device: rTMS to left DLPFC", Countries="Australia", Target_size="60",
        ),
    ]


ALLPUBLICXML = ("ctgov_legacy_xml_allpublicxml_subset_reesewang25/"
                "AllPublicXML_subset_NCT0000xxxx_NCT0046xxxx_NCT0049xxxx.tar.gz")


def damaged_xml_tar(trials_dir: Path, n: int, path: Path) -> Path:
    """The first ``n`` real AllPublicXML records as a tar.gz at ``path``, with a README (member
    11), member 61 cut inside its XML and, at the end, a changed copy of member 4 (the later
    copy wins)."""
    members = []
    with tarfile.open(trials_dir / ALLPUBLICXML) as src:
        for info in src:
            if info.isfile():
                members.append((info.name, src.extractfile(info).read()))
            if len(members) == n:
                break
    members.insert(10, ("NCT0000xxxx/README.txt", b"not a record"))
    name, data = members[60]
    members[60] = (name, data[: len(data) // 2])  # cut inside the XML
    name, data = members[3]
    members.append((name.replace(".xml", "-copy.xml"), data.replace(b"<brief_title>", b"<brief_title>Copy: ", 1)))
    with tarfile.open(path, "w:gz") as dst:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return path


def store_state(db: Path) -> dict:
    """Everything an import leaves in a store but ids and times: rows, runs, problems, labels
    (their evidence compared as parsed JSON), each a DataFrame in a fixed order."""
    from neuromodmap.trials.store import TrialStore

    with TrialStore(db, read_only=True) as store:
        state = {
            "trials": store.con.execute("SELECT * EXCLUDE (imported_at, import_run_id) FROM trials"
                                        " ORDER BY registry_id").df(),
            "runs": store.con.execute("SELECT kind, source, format, as_of, n_read, n_ok, n_problems, status, n_files"
                                      " FROM import_runs ORDER BY started").df(),
            "problems": store.con.execute("SELECT p.source, location, field, reason, registry_id, action"
                                          " FROM import_problems p JOIN import_runs r USING (run_id)"
                                          " ORDER BY r.started, p.recorded_at, p.rowid").df(),
            "labels": store.con.execute("SELECT * EXCLUDE (classified_at) FROM trial_labels ORDER BY registry_id").df(),
        }
    state["labels"]["evidence"] = [json.dumps(json.loads(e), sort_keys=True) for e in state["labels"]["evidence"]]
    return state
