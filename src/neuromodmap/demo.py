"""``neuromodmap demo``: every stage on the real data shipped in ``shared/data``, offline, one report.

Trials (the 101k ClinicalTrials.gov text corpus plus the structured registry records), literature
(a five-database search export → de-duplication → eligibility criteria → PRISMA 2020, and a
screening simulation on a labelled review), evidence (rTMS versus sham in treatment-resistant
depression, Gaynes et al. 2011, its published estimates reproduced), connectome (the built-in pain and depression targets, and DLPFC sites against the sgACC),
each writing its section; then :func:`neuromodmap.report.build_report` assembles
``report.html``.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

__all__ = ["run_demo", "DemoResult", "DEMO_TITLE"]

DEMO_TITLE = "neuromodmap demo: neuromodulation for chronic pain and depression, from registries to brain targets"

CORPUS = "trials/ctgov_text_2018.jsonl.gz"
#: structured registry records (full fields: phase, status, dates, sites), as found in shared/data
STRUCTURED = (
    ("trials/ctgov_v2_json", "*.json"),
    ("trials/ctgov_legacy_xml", "*.xml"),
    ("trials/ctgov_v2_json_download_herniated_disc_koy570", "ctg-studies.json.gz"),
    ("trials/ctgov_v2_json_zip_and_csv_erectile_dysfunction_marcmorcos", "ctg-studies.json.zip"),
    ("trials/who_ictrp_xml_2024_machado", "*.xml"),
    ("trials/who_ictrp_covid19_2020_ebmdatalab", "*.xml.gz"),
    # 1,200 US pain trials from AACT (phase, status, dates, enrollment, sponsor class): the pain landscape
    ("trials/aact_derived_pain_trials_us_anhkhoavo", "All_pain_master_file.csv.gz"),
)
ALLPUBLICXML = ("trials/ctgov_legacy_xml_allpublicxml_subset_reesewang25/"
                "AllPublicXML_subset_NCT0000xxxx_NCT0046xxxx_NCT0049xxxx.tar.gz")
LITERATURE_EXPORTS = "literature/exports/citesource_gambling_harms"
#: what a reader of the demo report must know about that search
LITERATURE_NOTE = (
    "The search is a real one, in five databases on gambling harms (files dated 2022-12-07; the CiteSource "
    "project's example data): it is the multi-database export shipped with the data, and it shows how "
    "de-duplication, the eligibility criteria, the registry links and the flow work on real exports. It is not "
    "a neuromodulation search, so no reviewer has screened its records: the flow counts them as awaiting "
    "screening, and the registers box (the neuromodulation trials of the trials stage) does not share its topic.")
LABELLED = "literature/labelled/Bannach-Brown_2019.csv.gz"

_CTGOV = "ClinicalTrials.gov, U.S. National Library of Medicine (cite with the as-of date)"


def _trial_sources(allpublicxml: bool = True, sample: int | None = None):
    """The registry data the demo imports (``allpublicxml``, ``sample``: as the run was asked)."""
    from neuromodmap.report import Source

    sources = [
        Source(name="ClinicalTrials.gov text corpus (101,016 records, NCT00000102 to NCT03579706)"
                    + (f"; the first {sample:,} records" if sample else ""),
               source="github.com/ejaybennett/healthdata, commit a3af0d128132c19c811a48ce985c64fa1f4912a4 "
                      "(title, brief summary and detailed description only)",
               as_of="records as registered up to about mid-2018", citation=_CTGOV),
        Source(name="ClinicalTrials.gov AllPublicXML subset (6,786 full legacy XML records)",
               source="github.com/reesewang25/enrollment_and_studylength, commit "
                      "5c5cc15dee126c927c3438199d61e9069d9a7ce6", as_of="2023-02-03", citation=_CTGOV),
        Source(name="ClinicalTrials.gov API v2 and legacy XML fixtures (12 + 60 records)",
               source="github.com/ctti-clinicaltrials/aact, commit 5a060286d07ba038fbb5d01096a6b98eaa5803e2",
               citation=_CTGOV),
        Source(name="ClinicalTrials.gov website export, herniated disc (100 studies)",
               source="github.com/koy570/herniated_disc, commit 15ade5a9fc95d4c45a1dfd181061a4a12d7848c4",
               as_of="2024-12-16", citation=_CTGOV),
        Source(name="ClinicalTrials.gov bulk JSON, erectile dysfunction (635 studies)",
               source="github.com/Marc-Morcos/ClinicalTrials-Urology-Database-Word-Counter, commit "
                      "4cc762fc876f512e4b0e52ac231fc1993a2d9595", as_of="2024-09-24", citation=_CTGOV),
        Source(name="AACT studies table, 1,200 US pain trials started 2000-2019",
               source="github.com/AnhKhoaVo/Race_in_Pain_Clinical_Trials, commit "
                      "8bfe7e46eced35d1a3ec311cbd992ff5bf9618e6 (All_pain_master_file.csv; AACT snapshot)",
               as_of="2020-06-30", citation="AACT (Clinical Trials Transformation Initiative) and " + _CTGOV),
        Source(name="WHO ICTRP XML exports (95 and 578 trials)",
               source="github.com/machado-t/ICTRP_xml_to_ris (d384b98) and github.com/ebmdatalab/"
                      "covid_trials_tracker-covid (f25e744)", as_of="2024-06-09 and 2020-03-18",
               citation="WHO International Clinical Trials Registry Platform (ICTRP)"),
    ]
    return [src for src in sources if allpublicxml or "AllPublicXML" not in src.name]


@dataclass
class DemoResult:
    report: Path
    seconds: float
    steps: list[tuple[str, float]] = field(default_factory=list)


class _Steps:
    """Numbered progress lines with the time each step took."""

    def __init__(self, console: Console, total: int):
        self.console, self.total, self.n = console, total, 0
        self.times: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        self.n += 1
        self.console.print(f"[bold cyan][{self.n}/{self.total}][/] {text} …", highlight=False)
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.times.append((text, seconds))
        self.console.print(f"      [green]done[/] in {seconds:.1f} s", highlight=False)


def _sample(corpus: Path, n: int, folder: Path) -> Path:
    """The first ``n`` records of the corpus, as a JSON-lines file (for quick runs and tests)."""
    path = folder / f"corpus_first_{n}.jsonl"
    with gzip.open(corpus, "rt", encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= n:
                break
            dst.write(line)
    return path


def _import_structured(store, files: list[Path]) -> tuple[int, int, list[str]]:
    """Import structured records over the corpus (what ``trials import`` does: two processes
    share the files where they can) and classify the trials they brought or changed; returns
    (records read, neuromodulation trials among them, the import's notes)."""
    from neuromodmap.trials.classify import CLASSIFIER_VERSION, classify
    from neuromodmap.trials.pipeline import import_files

    report = import_files(store, files)
    changed = set(store.con.execute(
        "SELECT registry_id FROM trials WHERE import_run_id IN (SELECT unnest(?))", [report.runs]).df()["registry_id"])
    labels = [classify(t) for t in store.iter_trials() if t.registry_id in changed]
    store.write_labels(labels, classifier_version=CLASSIFIER_VERSION)
    return report.n_read, sum(1 for c in labels if c.neuromod), report.notes


def run_demo(out: str | Path = "neuromodmap-demo", data_dir: str | Path | None = None, *,
             trials_sample: int | None = None, allpublicxml: bool = True, simulation: bool = True,
             console: Console | None = None) -> DemoResult:
    """Run every stage on the shipped real data and build ``out/report.html``.

    Parameters
    ----------
    out : path
        Output folder (re-created stage by stage; the project database is rebuilt).
    data_dir : path, optional
        The shared data folder (default: ``$NEUROMODMAP_DATA`` or ``../shared/data``).
    trials_sample : int, optional
        Import only the first N records of the 101k corpus (quick runs, tests).
    allpublicxml : bool
        Also import the 6,786 structured AllPublicXML records (about 30 s).
    simulation : bool
        Run the screening simulation on the labelled review (about 15 s).
    """
    from neuromodmap.config import data_dir as resolve_data_dir

    started = time.perf_counter()
    console = console or Console(stderr=True)
    data = resolve_data_dir(data_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = _Steps(console, total=8 + int(simulation))
    db = out / "project.duckdb"
    for stale in (db, out / "project.duckdb.wal"):
        stale.unlink(missing_ok=True)
    stage_dirs = {name: out / name for name in ("trials", "literature", "evidence", "connectome")}
    for folder in stage_dirs.values():
        shutil.rmtree(folder, ignore_errors=True)

    with tempfile.TemporaryDirectory(prefix=".work-", dir=out) as tmp:
        renamed = _trials_import(data, db, Path(tmp), steps, trials_sample, allpublicxml)
    # literature before the survey: the survey counts the trials that literature records report
    _literature(data, db, stage_dirs["literature"], steps, simulation)
    _trials_survey(db, stage_dirs["trials"], steps, renamed, _trial_sources(allpublicxml, trials_sample))
    effects = _evidence(data, stage_dirs["evidence"], steps)
    _connectome(data, stage_dirs["connectome"], steps, effects)

    from neuromodmap.report import build_report

    report = out / "report.html"
    with steps.step("report: assembling the sections into one self-contained HTML file"):
        build_report([d for d in stage_dirs.values() if d.is_dir()], report, title=DEMO_TITLE)
    seconds = time.perf_counter() - started
    console.print(f"{report.stat().st_size / 2**20:.1f} MB report; demo ran in {seconds:.0f} s", highlight=False)
    return DemoResult(report=report, seconds=seconds, steps=steps.times)


def _trials_import(data: Path, db: Path, work: Path, steps: _Steps, sample: int | None,
                   allpublicxml: bool) -> dict[str, str]:
    """Import and classify; returns the sources to name in the methods instead of temporary files."""
    from neuromodmap.trials.pipeline import import_and_classify
    from neuromodmap.trials.store import TrialStore

    corpus = data / CORPUS
    if not corpus.is_file():
        raise FileNotFoundError(f"{corpus}: the 101k trial corpus is missing from the data folder")
    structured = [p for folder, pattern in STRUCTURED for p in sorted((data / folder).glob(pattern))]
    renamed: dict[str, str] = {}
    with TrialStore(db) as store:
        label = f"the first {sample:,} records of" if sample else "all 101,016 records of"
        with steps.step(f"trials: importing and classifying {label} the 2018 ClinicalTrials.gov corpus"):
            source = _sample(corpus, sample, work) if sample else corpus
            if sample:
                renamed[str(source)] = f"the first {sample:,} records of {corpus}"
            stats = import_and_classify(store, [source])
            _print_notes(steps.console, stats["notes"])
            steps.console.print(f"      {stats['n_classified']:,} records, {stats['n_neuromod']:,} neuromodulation "
                                "trials", highlight=False)
        with steps.step(f"trials: adding {len(structured)} files of structured registry records"
                        + (" and the AllPublicXML subset" if allpublicxml else "")):
            files = list(structured)
            tar = data / ALLPUBLICXML
            if allpublicxml and tar.is_file():
                files.append(tar)  # the tar.gz as shipped, read member by member
            n_read, n_neuromod, notes = _import_structured(store, files)
            _print_notes(steps.console, notes)
            steps.console.print(f"      {n_read:,} structured records, {n_neuromod:,} of them neuromodulation trials",
                                highlight=False)
    return renamed


def _print_notes(console: Console, notes: list[str]) -> None:
    """The lines ``trials import`` prints for website exports (layout, records, as-of date)."""
    for note in notes:
        console.print(f"      {note}", markup=False, highlight=False)


def _trials_survey(db: Path, out: Path, steps: _Steps, renamed: dict[str, str], sources) -> None:
    from neuromodmap.literature.trial_links import publications_by_trial
    from neuromodmap.trials.store import TrialStore
    from neuromodmap.trials.survey import survey

    # read-only, as `trials survey` opens it: reading the references of a read-write store of the whole
    # corpus ran out of the store's 512 MB memory limit (DuckDB OutOfMemoryException), read-only did not
    with TrialStore(db, read_only=True) as store, \
            steps.step("trials: survey (tables, figures, linked publications, the classified-trial list)"):
        runs = store.import_runs_df()
        runs["source"] = runs["source"].map(lambda s: renamed.get(s, s))
        # the literature records are in the same project database (literature link-trials ran)
        publications = publications_by_trial(store.con, store.con)
        survey(store.trials_df(), store.labels_df(), out, import_runs=runs, publications=publications, sources=sources)


def _literature(data: Path, db: Path, out: Path, steps: _Steps, simulation: bool) -> None:
    from neuromodmap.literature._reportlet import prisma_section, simulation_section
    from neuromodmap.literature.criteria import load_profile
    from neuromodmap.literature.dedup import deduplicate
    from neuromodmap.literature.io import read_many
    from neuromodmap.literature.prisma import prisma_flow
    from neuromodmap.literature.records import LiteratureImportError
    from neuromodmap.literature.screening import ScreeningSession
    from neuromodmap.literature.store import load_records, open_store, save_dedup, save_import
    from neuromodmap.literature.trial_links import link_trials

    exports = sorted((data / LITERATURE_EXPORTS).glob("*.ris"))
    with steps.step(f"literature: {len(exports)} database exports → de-duplication → criteria → PRISMA 2020"):
        con = open_store(db)
        try:
            for result in read_many(exports):
                if isinstance(result, LiteratureImportError):
                    raise result
                save_import(con, result)
            save_dedup(con, deduplicate(load_records(con)))
            profile = load_profile("default")
            ScreeningSession(con, profile)
            links = link_trials(con, trials_db=str(db))  # the trials are in the same project database
            flow = prisma_flow(con)
            folder = out / "prisma"
            flow.write(folder)
            prisma_section(con, flow, folder, criteria_methods=profile.methods_sentence(), trial_links=links,
                           title="A five-database search: de-duplication, eligibility and the PRISMA 2020 flow",
                           note=LITERATURE_NOTE).write(folder)
            steps.console.print(f"      {sum(flow.identified_by_database.values())} database records and "
                                f"{sum(flow.identified_by_register.values())} register records (the trials stage), "
                                f"{flow.duplicates_removed} duplicates, "
                                f"{flow.records_entering_screening} to screen; {links.summary()}", highlight=False)
        finally:
            con.close()
    if simulation:
        with steps.step("literature: screening simulation on a labelled review (Bannach-Brown 2019, depression)"):
            _simulation(data, out / "simulation", simulation_section)


def _simulation(data: Path, out: Path, simulation_section) -> None:
    from neuromodmap.literature import activelearning as al
    from neuromodmap.literature.io import read_records

    dataset = data / LABELLED
    records = read_records(dataset).records
    texts = [al.record_text(r, list(al.DEFAULT_FIELDS)) for r in records]
    labels = [int(float(r.extra["label_included"])) for r in records]
    sim = al.simulate(texts, labels, seed=0, fields=",".join(al.DEFAULT_FIELDS), dataset=str(dataset),
                      label_column="label_included")
    sim.write(out)
    simulation_section(
        sim, out, dataset_name="Bannach-Brown 2019 (animal models of depression)",
        citation="Bannach-Brown A, Przybyła P, Thomas J, et al. Machine learning algorithms for systematic review: "
                 "reducing workload in a preclinical review of animal studies and reducing human screening error. "
                 "Syst Rev. 2019;8:23. Data: asreview/systematic-review-datasets (CC-BY 4.0)."
    ).write(out)


def _evidence(data: Path, out: Path, steps: _Steps):
    """The Gaynes 2011 meta-analysis; returns its pooled effect per target code (for the connectome),
    each target drawn at its catalogue site (the atlases from ``data``, never a download)."""
    from neuromodmap.evidence import datasets
    from neuromodmap.evidence._reportlet import meta_section
    from neuromodmap.evidence.pipeline import run_meta
    from neuromodmap.report import Source

    name = "gaynes2011_fig13"
    spec = datasets.DATASETS[name]
    with steps.step(f"evidence: meta-analysis of {spec.title.split(':')[0]} (Gaynes 2011, AHRQ, {spec.figure})"):
        report = run_meta(datasets.dataset_path(name), measure=spec.measure, by=spec.by, method="REML")
        report.write(out)
        reproduced = datasets.reproduce(name)
        by_target = datasets.pooled_by_target(name, data_dir=data)
        prov = datasets.provenance(name)
        meta_section(
            report, out, title=f"{spec.title} (Gaynes et al. 2011, {spec.figure})", reproduced=reproduced,
            reproduced_caption="The report pooled each tier with a random-effects model and then pooled the two tier "
                               "estimates with a DerSimonian-Laird model; neuromodmap reproduces its printed "
                               "estimates to the two decimals it prints. Pooling all 12 trials in one model (the "
                               "next table, 'overall') is a different analysis.",
            by_target=by_target, comparison="rTMS vs sham in treatment-resistant depression, response",
            sources=[Source.from_provenance(f"Gaynes et al. 2011, {spec.figure} (per-trial relative risks)", prov)],
        ).write(out)
        row = reproduced[reproduced["analysis"] == "overall"].iloc[0]
        steps.console.print(f"      overall RR reproduced {row['rr']:.2f} ({row['ci_lb']:.2f} to {row['ci_ub']:.2f}); "
                            f"published {row['published_rr']:.2f} ({row['published_ci_lb']:.2f} to "
                            f"{row['published_ci_ub']:.2f})", highlight=False)
    return by_target


def _connectome(data: Path, out: Path, steps: _Steps, effects=None) -> None:
    from neuromodmap.connectome import (
        SGACC_SEED,
        attach_target_effects,
        load_connectome,
        map_targets,
        site_to_seed,
        target_catalogue,
    )
    from neuromodmap.connectome._reportlet import site_to_seed_section

    with steps.step("connectome: pain and depression targets on the default connectome (maps, overlap, hubs)"):
        catalogue = target_catalogue(data)
        connectome = load_connectome("enigma-schaefer400", data)
        for indication in ("pain", "depression"):
            targets = catalogue
            if indication == "depression" and effects is not None:
                # the meta-analysis's pooled effect per target, drawn at the targets (evidence → connectome)
                targets = attach_target_effects(catalogue, effects)
            result = map_targets(targets, connectome, indication=indication)
            result.save(out / indication)
            ov = result.overlap
            overlap = (f"superficial vs deep r = {ov['r']:.2f} ("
                       + ", ".join(f"{n} p = {p:.3g}" for n, p in (ov.get("p_null") or {}).items()) + ")"
                       if ov.get("r") is not None else "no overlap test")
            steps.console.print(f"      {indication}: {len(result.targets)} targets mapped, {overlap}", highlight=False)
    with steps.step("connectome: DLPFC stimulation sites against the sgACC (Fox 2012)"):
        sites = catalogue[catalogue.target == "dlpfc_left"]
        table = site_to_seed(sites, SGACC_SEED, connectome=connectome)
        site_to_seed_section(table, out / "sgacc", seed=SGACC_SEED).write(out / "sgacc")
