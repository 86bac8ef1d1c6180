"""``neuromodmap trials ...``: import, fetch, classify, link and survey registry trials."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from neuromodmap.store import DEFAULT_DB

app = typer.Typer(help="Trial registries: import, fetch, classify, de-duplicate, survey.", no_args_is_help=True)
console = Console(stderr=True)

_DB = typer.Option(DEFAULT_DB, "--db", help="DuckDB file (created if missing).")


def _fail(message: str) -> None:
    """A user error: one line, exit 2 (printed by the root command's handler, :mod:`neuromodmap.errors`)."""
    from neuromodmap.errors import UserError

    raise UserError(message)


_ACTION_COUNTS = {
    "field emptied": "field(s) emptied (record kept)",
    "record skipped": "record(s) skipped",
    "record kept, id invalid": "record(s) kept with an invalid registry id",
    "file skipped": "file(s) not read",
    "rest of file skipped": "file(s) read up to a cut or corrupt part",
}
_PROBLEM_COLUMNS = ["source", "location", "registry_id", "field", "action", "reason"]


def _report_problems(problems, limit: int = 15, problems_csv: Path | None = None) -> None:
    """One line per problem (file:location (id) field name: reason [action]), at most ``limit``."""
    if not problems:
        return
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.action] = counts.get(p.action, 0) + 1
    summary = ", ".join(f"{n:,} {_ACTION_COUNTS.get(action, action)}" for action, n in counts.items())
    console.print(f"[yellow]{len(problems):,} problem(s): {summary}[/]", highlight=False)
    for p in problems[:limit]:
        console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
    if len(problems) > limit:
        console.print(f"  ... and {len(problems) - limit} more")
    if problems_csv:
        from neuromodmap._utils import atomic_write, defuse_formula

        with atomic_write(problems_csv, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=_PROBLEM_COLUMNS)
            writer.writeheader()
            for p in problems:
                writer.writerow({k: defuse_formula(v) for k, v in p.model_dump(include=set(_PROBLEM_COLUMNS)).items()})
        console.print(f"  all problems written to {problems_csv}")


def _parse_date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"--as-of must be a date like 2018-07-01, not {value!r}")
    return None


@app.command("import")
def import_cmd(
    inputs: list[Path] = typer.Argument(..., help="Registry files or folders (read recursively): v2 JSON/JSONL, "
                                                  "legacy XML, ZIP or tar(.gz) archives of either, ICTRP XML/CSV, "
                                                  "ClinicalTrials.gov website CSV/TSV, ctrdata databases (EU registers, ISRCTN); "
                                                  "any single file also .gz."),
    db: Path = _DB,
    as_of: str = typer.Option(None, "--as-of", help="Date the data refer to (YYYY-MM-DD), when the file does not say."),
    problems_csv: Path = typer.Option(None, "--problems", help="Write every problem (skipped records, emptied fields) to this CSV."),
) -> None:
    """Import registry files into the store (idempotent: upsert by registry id)."""
    from neuromodmap.trials.io import expand_inputs
    from neuromodmap.trials.pipeline import import_files
    from neuromodmap.trials.store import TrialStore

    for path in inputs:
        if not path.exists():
            _fail(f"{path}: no such file")
    problems: list = []
    existed = db.exists()
    try:
        files = expand_inputs(inputs)
        for folder in dict.fromkeys(f.folder for f in files if f.folder is not None):
            n = sum(1 for f in files if f.folder == folder)
            console.print(f"{folder}: {n:,} files (the folder and its subfolders)", markup=False, highlight=False)
        as_of_date = _parse_date(as_of)
        before = None
        with TrialStore(db) as store:
            before = len(store)
            report = import_files(store, files, as_of=as_of_date, problems=problems)
    except (ValueError, OSError) as exc:
        from neuromodmap.errors import user_line

        _fail(user_line(exc) or str(exc))
    except BaseException as exc:  # Ctrl-C: KeyboardInterrupt, or DuckDB's "Query interrupted"
        from neuromodmap.errors import is_interrupt

        if before is None or not is_interrupt(exc):
            raise
        _interrupted(db, before)
    for note in report.notes:
        console.print(note, markup=False, highlight=False)
    rate = f"{report.records_per_second:,.0f} records/s"
    if len(files) > 1:
        rate = f"{len(files) / report.seconds if report.seconds > 0 else 0:,.0f} files/s, " + rate
    console.print(f"Imported {report.n_upserted:,} trials into {db} from {report.n_read:,} records in "
                  f"{len(files):,} file(s), {report.seconds:.1f} s ({rate})")
    _report_problems(problems, problems_csv=problems_csv)
    unreadable = {p.source for p in problems if p.location == "file"}
    if report.n_read == 0 and files and len(unreadable) >= len(files):
        # nothing could be read: a user error (exit 2) as in trials classify and literature import,
        # and a store this run created holds nothing, so it is not left behind
        if not existed:
            for leftover in (db, db.with_name(db.name + ".wal")):
                leftover.unlink(missing_ok=True)
        _fail(f"no input could be read ({', '.join(sorted(unreadable)[:10])}); "
              "give ClinicalTrials.gov, WHO ICTRP or EU register exports (see docs/trials_import.md)")
    _fail_unreadable(problems)


def _interrupted(db: Path, before: int) -> None:
    """Say what an interrupted import kept: every batch committed before Ctrl-C stays in the store."""
    from neuromodmap.errors import Interrupted
    from neuromodmap.store import connect

    try:
        con = connect(db, read_only=True)
        try:
            after = con.execute("SELECT count(*) FROM trials").fetchone()[0]
        finally:
            con.close()
        kept = (f"{db} holds {after:,} trials ({after - before:+,} from this run, in the batches committed "
                "before Ctrl-C; the half-written batch was rolled back)")
    except Exception:  # noqa: BLE001 - say what we can
        kept = f"{db} keeps every batch committed before Ctrl-C (the half-written batch was rolled back)"
    raise Interrupted(kept + "; run the same command again to import the rest (records are upserted, "
                      "nothing is duplicated)") from None


@app.command()
def fetch(
    cond: str = typer.Option(None, "--cond", help="query.cond, e.g. 'chronic pain OR depression'"),
    intr: str = typer.Option(None, "--intr", help="query.intr, e.g. 'spinal cord stimulation'"),
    term: str = typer.Option(None, "--term", help="query.term (any field)"),
    advanced: str = typer.Option(None, "--advanced", help="filter.advanced, e.g. 'AREA[StudyType]INTERVENTIONAL'"),
    db: Path = _DB,
    rate: float = typer.Option(1.0, "--rate", help="Maximum requests per second (be polite)."),
    base_url: str = typer.Option("https://clinicaltrials.gov/api/v2", "--base-url", help="API root."),
) -> None:
    """Fetch studies live from the ClinicalTrials.gov API v2 (resumes an interrupted query)."""
    from neuromodmap.trials.ctgov import fetch_studies
    from neuromodmap.trials.store import TrialStore

    if not any([cond, intr, term, advanced]):
        _fail("give at least one of --cond, --intr, --term, --advanced")
    try:
        with TrialStore(db) as store:
            report = fetch_studies(store, cond=cond, intr=intr, term=term, advanced=advanced,
                                   base_url=base_url, rate=rate)
    except Exception as exc:  # network failures after all retries: one clear line
        _fail(f"fetch failed: {exc}")
    console.print(f"Fetched {report.n_studies:,} studies into {db} ({report.n_pages} pages)")


@app.command()
def classify(
    inputs: list[Path] = typer.Argument(None, help="Registry files or folders (any supported format). Omit to "
                                                   "classify the store."),
    output: Path = typer.Option(..., "-o", "--output", help="CSV with one row per trial."),
    db: Path = typer.Option(None, "--db", help="Also store the labels (or, without inputs, classify this store)."),
    problems_csv: Path = typer.Option(None, "--problems", help="Write every problem (skipped records, emptied fields) to this CSV."),
) -> None:
    """Classify trials (neuromod, modalities, group, indication, targets, invasive, evidence) into a CSV."""
    from neuromodmap.trials.pipeline import classify_to_csv

    if not inputs and db is None:
        _fail("give input files, or --db to classify the trials already in a store")
    if not inputs and not db.exists():
        _fail(f"{db}: no such store; check the --db path, or run 'neuromodmap trials import' first")
    for path in inputs or []:
        if not path.exists():
            _fail(f"{path}: no such file")
    problems: list = []
    try:  # no input readable: one line naming the file(s), exit code 2, no output file
        stats = classify_to_csv(inputs or [], output, db=db, problems=problems)
    except (ValueError, OSError) as exc:
        from neuromodmap.errors import user_line

        _fail(user_line(exc) or str(exc))
    for note in stats.get("notes", ()):
        console.print(note, markup=False, highlight=False)
    console.print(f"Classified {stats['n_trials']:,} trials ({stats['n_neuromod']:,} neuromodulation) "
                  f"→ {output} in {stats['seconds']:.1f} s ({stats['n_trials'] / max(stats['seconds'], 1e-9):,.0f} records/s)")
    # some inputs unreadable: the others were classified and written; the unreadable ones are
    # named, and the exit status is 1 as for trials import and literature import
    _report_problems(problems, problems_csv=problems_csv)
    _fail_unreadable(problems)


def _fail_unreadable(problems) -> None:
    """Exit 1 naming the files that could not be read at all (the others were processed)."""
    unreadable = sorted({p.source for p in problems if p.location == "file"})
    if unreadable:
        shown = ", ".join(unreadable[:10]) + (f" and {len(unreadable) - 10:,} more" if len(unreadable) > 10 else "")
        console.print(f"[bold red]error:[/] could not read {len(unreadable):,} file(s): {escape(shown)}",
                      highlight=False)
        raise typer.Exit(code=1)


@app.command()
def link(
    db: Path = _DB,
    threshold: int = typer.Option(90, "--threshold", help="rapidfuzz title score for a flagged candidate."),
    output: Path = typer.Option(None, "-o", "--output", help="Write the links to this CSV."),
) -> None:
    """Link ICTRP and ClinicalTrials.gov records (TrialID, Secondary_ID; fuzzy titles only flagged)."""
    from neuromodmap.trials.dedup import link_registries
    from neuromodmap.trials.store import TrialStore

    if not db.exists():
        _fail(f"database {db} does not exist; import data first")
    with TrialStore(db) as store:
        links = link_registries(store, fuzzy_threshold=threshold)
    confirmed = int(links["confirmed"].sum()) if len(links) else 0
    console.print(f"{confirmed} confirmed links, {len(links) - confirmed} flagged fuzzy candidates (not merged)")
    if output:
        from neuromodmap._utils import write_csv

        write_csv(links, output)


@app.command()
def survey(
    db: Path = _DB,
    out: Path = typer.Option(Path("survey"), "-o", "--out", help="Output directory."),
    literature_db: Path = typer.Option(None, "--literature-db",
                                       help="Literature store whose records link to the trials (neuromodmap literature "
                                            "link-trials); default: the --db file itself."),
) -> None:
    """Write the landscape survey (CSV tables, PNG/SVG figures, survey.html) of the classified trials."""
    from neuromodmap.literature.trial_links import publications_by_trial
    from neuromodmap.store import connect
    from neuromodmap.trials.store import TrialStore
    from neuromodmap.trials.survey import survey as run_survey

    if not db.exists():
        _fail(f"database {db} does not exist; run 'neuromodmap trials import' first")
    if literature_db is not None and not literature_db.exists():
        _fail(f"literature database {literature_db} does not exist")
    with TrialStore(db, read_only=True) as store:
        labels = store.labels_df()
        if labels.empty:
            _fail(f"no classified trials in {db}; run 'neuromodmap trials classify --db {db} -o labels.csv' first")
        separate = literature_db is not None and literature_db.resolve() != db.resolve()
        lit_con = connect(literature_db, read_only=True) if separate else store.con
        try:
            publications = publications_by_trial(store.con, lit_con)
        finally:
            if separate:
                lit_con.close()
        result = run_survey(store.trials_df(), labels, out, import_runs=store.import_runs_df(),
                            publications=publications)
    console.print(f"{result.n_neuromod:,} neuromodulation trials of {result.n_trials:,}; report: {result.html_path}")
