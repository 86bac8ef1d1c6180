"""Registered neuromodulation trials with a linked publication, on real legacy XML records.

The AllPublicXML subset (6,785 records, NCT0000xxxx-NCT0049xxxx) holds 23 trials the
classifier labels neuromodulation; three of them list results references (read by hand from
the XML files: NCT00462566 motor cortex stimulation for pain, PMID 26324857; NCT00004980 rTMS
for auditory hallucinations, PMID 15936729; NCT00461019 CardioFit vagal stimulation, PMIDs
21030409 and 18760668). The test imports those 23 records, plus two controls that are not
neuromodulation: the MTA study (43 results references) and NCT00003425, whose "Autologous SCS"
is haematopoietic stem cell support (one results reference, PMID 14767498).
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.literature import open_store, read_records, save_import
from neuromodmap.literature.trial_links import link_trials, publications_by_trial
from neuromodmap.trials.pipeline import import_and_classify
from neuromodmap.trials.store import TrialStore
from neuromodmap.trials.survey import (
    LINKED_PUBLICATION_DEFINITION,
    linked_publications_table,
    survey,
)

NEUROMOD = ("NCT00001663", "NCT00001915", "NCT00001661", "NCT00001666", "NCT00001478",
            "NCT00001545", "NCT00001926", "NCT00004421", "NCT00462566", "NCT00001782", "NCT00001923",
            "NCT00007124", "NCT00001665", "NCT00001780", "NCT00000375", "NCT00004980", "NCT00460902",
            "NCT00461019", "NCT00001672", "NCT00001657", "NCT00001776", "NCT00006285", "NCT00001216")
WITH_RESULTS = {"NCT00462566": 1, "NCT00004980": 1, "NCT00461019": 2}


@pytest.fixture(scope="module")
def exports_dir(data_root: Path) -> Path:
    return data_root / "literature" / "exports"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, trials_dir: Path) -> Path:
    tmp = tmp_path_factory.mktemp("pubs")
    archive = next((trials_dir / "ctgov_legacy_xml_allpublicxml_subset_reesewang25").glob("*.tar.gz"))
    wanted = set(NEUROMOD) | {"NCT00000388", "NCT00003425"}
    files = []
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and Path(member.name).stem in wanted:
                path = tmp / Path(member.name).name
                path.write_bytes(tar.extractfile(member).read())
                files.append(path)
    assert len(files) == len(wanted)
    db = tmp / "trials.duckdb"
    with TrialStore(db) as store:
        import_and_classify(store, sorted(files))
    return db


def test_publications_by_trial_counts_results_references_only(store_path: Path) -> None:
    with TrialStore(store_path, read_only=True) as store:
        pubs = publications_by_trial(store.con).set_index("registry_id")
        labels = store.labels_df()
    assert set(labels.loc[labels["neuromod"], "registry_id"]) == set(NEUROMOD)
    assert pubs["registry_fields"].all() and len(pubs) == 25  # full legacy records: "none" is a real none
    linked = pubs[pubs["n_registry_publications"] > 0]["n_registry_publications"].to_dict()
    # NCT00000388: 43 results references, 40 with a PMID and 3 with a citation only, all distinct
    assert linked == {**WITH_RESULTS, "NCT00000388": 43, "NCT00003425": 1}
    # NCT00001663 cites three publications, all as background: no publication of its own
    assert pubs.loc["NCT00001663", "n_registry_publications"] == 0


def test_survey_linked_publications_table(store_path: Path, tmp_path: Path) -> None:
    with TrialStore(store_path, read_only=True) as store:
        trials, labels, pubs = store.trials_df(), store.labels_df(), publications_by_trial(store.con)
    result = survey(trials, labels, tmp_path / "out", publications=pubs)
    table = result.table("linked_publications").set_index("modality_group")
    everything = table.loc["all"]
    assert (everything["n_trials"], everything["n_linked"], everything["n_with_registry_fields"]) == (23, 3, 23)
    assert everything["percent_linked"] == round(100 * 3 / 23, 1)
    assert pd.isna(everything["n_linked_by_literature_record"])  # no literature store linked: unknown, not 0
    # per group: a trial counts once in each of its groups, linked ones among them
    nm = labels[labels["neuromod"]]
    for group, row in table.drop(index="all").iterrows():
        members = {r for r, gs in zip(nm["registry_id"], nm["modality_group"], strict=True) if group in list(gs)}
        assert row["n_trials"] == len(members)
        assert row["n_linked"] == len(members & set(WITH_RESULTS))
    assert (tmp_path / "out" / "tables" / "linked_publications.csv").exists()
    assert (tmp_path / "out" / "figures" / "linked_publications.png").exists()
    html = result.html_path.read_text()
    assert "Trials with a linked publication, by modality group" in html
    assert "Background references do not count" in html and "linked_publications" not in result.unavailable
    section = result.section()  # the report's trials section carries the table and its figure
    assert "linked_publications" in [t.id for t in section.tables]
    assert "linked_publications" in [f.id for f in section.figures]
    # without link data the table is listed as unavailable, not drawn as zeros
    bare = survey(trials, labels, tmp_path / "bare")
    assert "linked_publications" in bare.unavailable and "linked_publications" not in bare.tables


def test_a_quoting_literature_record_links_a_trial(tmp_path: Path, exports_dir: Path, corpus_path: Path) -> None:
    # HAPPY-IBD (NCT02265588, 2018 corpus: no reference fields) is quoted by the real ovid export;
    # it is not a neuromodulation trial, so the table is built for it directly
    line = next(x for x in gzip.open(corpus_path, "rb") if b'"nctId": "NCT02265588"' in x)
    (tmp_path / "happy.jsonl").write_bytes(line)
    db = tmp_path / "project.duckdb"
    with TrialStore(db) as store:
        store.import_files([tmp_path / "happy.jsonl"], progress=False)
    con = open_store(db)  # one project database for both stages
    save_import(con, read_records(exports_dir / "asreview_demo" / "ovid_psycinfo.ris"))
    link_trials(con)
    pubs = publications_by_trial(con, con)
    assert pubs.to_dict("records") == [{"registry_id": "NCT02265588", "registry_fields": False,
                                        "n_registry_publications": 0, "n_literature_records": 1}]
    nm = pd.DataFrame({"registry_id": ["NCT02265588"], "modality_group": [["other"]]})
    row = linked_publications_table(nm, pubs).set_index("modality_group").loc["all"]
    assert (row["n_linked"], row["n_linked_by_literature_record"], row["n_with_registry_fields"]) == (1, 1, 0)
    con.close()
    result = CliRunner().invoke(app, ["trials", "survey", "--db", str(db), "-o", str(tmp_path / "s")])
    assert result.exit_code == 2 and "no classified trials" in result.output
    assert "literature store quotes" in LINKED_PUBLICATION_DEFINITION


def test_survey_cli_with_a_literature_store(store_path: Path, tmp_path: Path, exports_dir: Path) -> None:
    lit = tmp_path / "review.duckdb"
    con = open_store(lit)
    save_import(con, read_records(exports_dir / "pubmed_xml" / "pubmed-29768149.xml"))
    with TrialStore(store_path, read_only=True) as store:
        link_trials(con, store.con)
    con.close()
    result = CliRunner().invoke(app, ["trials", "survey", "--db", str(store_path), "--literature-db", str(lit),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    csv_text = (tmp_path / "out" / "tables" / "linked_publications.csv").read_text()
    assert csv_text.splitlines()[-1].startswith("all,All neuromodulation trials,23,23,3,0,3,13.0,13.0")
    result = CliRunner().invoke(app, ["trials", "survey", "--db", str(store_path), "--literature-db",
                                      str(tmp_path / "missing.duckdb"), "-o", str(tmp_path / "out2")])
    assert result.exit_code == 2 and "missing.duckdb does not exist" in " ".join(result.output.split())


def test_prisma_registers_box_from_the_trials_store(store_path: Path, tmp_path: Path, exports_dir: Path) -> None:
    from neuromodmap.literature.prisma import load_manual_counts, prisma_flow, register_counts

    lit = tmp_path / "review.duckdb"
    con = open_store(lit)
    save_import(con, read_records(exports_dir / "pubmed_xml" / "asreview_pubmed.xml"))
    with TrialStore(store_path, read_only=True) as store:
        labels = store.labels_df()
        nm = labels[labels["neuromod"]]
        in_scope = {q: int(nm["indication"].isin(ind).sum()) for q, ind in
                    (("both", ["pain", "depression", "both"]), ("pain", ["pain", "both"]),
                     ("depression", ["depression", "both"]))}
        assert in_scope == {"both": 7, "pain": 2, "depression": 5}
        assert register_counts(store.con, question="pain") == {"ClinicalTrials.gov": 2}
        flow = prisma_flow(con, trials_con=store.con, question="both", trials_db=str(store_path))
        link_trials(con, store.con)
        linked = prisma_flow(con, trials_con=store.con, question="depression")
    assert flow.identified_by_register == {"ClinicalTrials.gov": 7} and flow.registers_linked is None
    assert flow.records_identified == 10 + 7
    # register records were screened by the trials classifier: the screening boxes count database records
    assert flow.records_entering_screening == 10 and flow.records_awaiting_screening == 10
    table = flow.to_frame()
    row = table[table["count"] == "records identified: register ClinicalTrials.gov"].iloc[0]
    assert row["n"] == 7 and row["source"].startswith(f"trials store {store_path}: trials + trial_labels")
    svg = flow.plot(tmp_path / "p.svg").read_text()
    assert "Registers (n = 7)" in svg and "classified by the trials stage" in svg
    assert linked.identified_by_register == {"ClinicalTrials.gov": 5} and linked.registers_linked == 0
    # hand-entered register counts replace the trials store's
    manual = tmp_path / "manual.yaml"
    manual.write_text("registers: {ICTRP: 3}\n")
    assert prisma_flow(con, load_manual_counts(manual)).identified_by_register == {"ICTRP": 3}
    con.close()
    result = CliRunner().invoke(app, ["literature", "prisma", "--db", str(lit), "--trials-db", str(store_path),
                                      "--question", "pain", "-o", str(tmp_path / "prisma")])
    assert result.exit_code == 0, result.output
    counts = (tmp_path / "prisma" / "prisma_counts.csv").read_text()
    assert "records identified: register ClinicalTrials.gov,2," in counts
    assert "records awaiting screening,10,literature_decisions (title_abstract)" in counts
