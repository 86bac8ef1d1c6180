"""`neuromodmap literature ...` commands: import → dedup → screen → prisma → export, and simulate."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from neuromodmap.store import DEFAULT_DB

app = typer.Typer(help="Literature: import search exports, de-duplicate, screen, PRISMA 2020, export.",
                  no_args_is_help=True)
_console = Console()
_err = Console(stderr=True)

_DB_OPTION = typer.Option(Path(DEFAULT_DB), "--db", help="Project DuckDB file (shared with the trials stage).")


def _fail(message: str) -> None:
    """A user error: one line, exit 2 (printed by the root command's handler, :mod:`neuromodmap.errors`)."""
    from neuromodmap.errors import UserError

    raise UserError(message)


def _open(db: Path, *, create: bool = False):
    """The store at ``db``; only the commands that add records (``create``) make a new one."""
    import duckdb

    from neuromodmap.literature.store import open_store

    if not create and not db.exists():
        _fail(f"{db}: no such store; check the --db path, or run `neuromodmap literature import` first")
    try:
        return open_store(db)
    except (duckdb.Error, OSError) as exc:
        from neuromodmap.errors import user_line

        _fail(user_line(exc) or f"{db}: cannot open the database ({exc})")


@app.command("import")
def import_(
    files: list[Path] = typer.Argument(..., help="Search exports: RIS, MEDLINE (.nbib/.txt), PubMed XML, BibTeX, CSV, XLSX."),
    db: Path = _DB_OPTION,
    database: str = typer.Option(None, "--database", help="Database the search ran in (default: from the file)."),
    show_issues: int = typer.Option(5, help="Problems to list per file (records skipped or kept without a title "
                                               "first; every problem is stored in literature_import_issues)."),
    workers: int = typer.Option(1, help="Parse files in this many processes (helps with many large files)."),
) -> None:
    """Import search exports (format detected from the content) into the database."""
    from neuromodmap.literature.io import read_many
    from neuromodmap.literature.records import LiteratureImportError, is_untitled_issue
    from neuromodmap.literature.store import save_import

    results = read_many(files, database=database, workers=workers)
    # no store is created when no file could be read
    con = _open(db, create=True) if any(not isinstance(r, LiteratureImportError) for r in results) else None
    table = Table(title="Imported records")
    for column in ("file", "format", "database", "records", "no title", "skipped", "notes"):
        table.add_column(column)
    failed = []
    for path, result in zip(files, results, strict=True):
        if isinstance(result, LiteratureImportError):
            failed.append(str(result))
            continue
        save_import(con, result)
        untitled = sum(1 for i in result.issues if is_untitled_issue(i))
        notes = sum(1 for i in result.issues if i.action != "skipped" and not is_untitled_issue(i))
        table.add_row(escape(path.name), result.format, escape(result.source_database), str(len(result.records)),
                      str(untitled), str(result.n_skipped), str(notes))
        # records skipped or kept without a title first, then the rest, each in file order; one line each
        rank = sorted(range(len(result.issues)), key=lambda k: (
            not (result.issues[k].action == "skipped" or is_untitled_issue(result.issues[k])), k))
        shown = sorted(rank[:max(show_issues, 0)])
        for k in shown:
            _err.print(f"[yellow]{escape(str(result.issues[k]))}[/]", soft_wrap=True)
        if len(result.issues) > len(shown):
            _err.print(f"{escape(str(path))}: {len(result.issues) - len(shown)} more problems not listed "
                       f"(--show-issues {len(result.issues)} lists them; all are stored in literature_import_issues)",
                       soft_wrap=True)
    if len(failed) == len(files) == 1:
        _fail(failed[0])  # the one file given cannot be read: one line, exit 2
    if len(failed) < len(files):
        _console.print(table)
    for message in failed:
        _err.print(f"[bold red]Not imported:[/] {escape(message)}", soft_wrap=True)
    if failed:  # exit 1: the other files were imported; 2: none was
        raise typer.Exit(1 if len(failed) < len(files) else 2)


@app.command()
def dedup(
    db: Path = _DB_OPTION,
    merge_threshold: float = typer.Option(95.0, help="Title similarity (0-100) at which two titles count as the "
                                                      "same; a merge still needs a DOI, PMID or agreeing journal, "
                                                      "volume, pages, first author and year."),
    review_threshold: float = typer.Option(85.0, help="Title similarity that lists an unconfirmed pair for review."),
    review_csv: Path = typer.Option(None, "--review", help="Write the pairs to review (with the fields that agree "
                                                           "and disagree) to this CSV."),
    decisions_csv: Path = typer.Option(None, "--decisions", help="A CSV of pairs with a verdict column "
                                                                   "(duplicate / not_duplicate): the --review file "
                                                                   "filled in, or merged pairs to undo."),
    groups_csv: Path = typer.Option(None, "--groups", help="Write the outcome one row per record: source_file, "
                                                           "source_position, record_id, group_id, rule."),
    pairs_csv: Path = typer.Option(None, "--pairs", help="Write every merged, linked and review pair with its rule, "
                                                         "relation and evidence."),
) -> None:
    """Find duplicates across databases, conservatively: a merge needs agreement beyond the title.

    Errata, retraction notices, conference abstracts and co-published texts are linked, never
    merged; nothing is deleted, and every merge can be undone with --decisions.
    """
    from neuromodmap._utils import write_csv
    from neuromodmap.literature.dedup import deduplicate
    from neuromodmap.literature.store import load_records, save_dedup

    con = _open(db)
    records = load_records(con)
    if not records:
        _fail(f"{db} holds no literature records; run `neuromodmap literature import` first")
    decisions = _read_pair_verdicts(decisions_csv) if decisions_csv else None
    result = deduplicate(records, merge_threshold=merge_threshold, review_threshold=review_threshold,
                         decisions=decisions)
    save_dedup(con, result)
    table = Table(title="Records per database")
    for column in ("database", "identified", "only here"):
        table.add_column(column)
    for name, row in result.counts_by_database().iterrows():
        table.add_row(escape(str(name)), str(row["identified"]), str(row["only_here"]))
    _console.print(table)
    merged = result.pairs[result.pairs["decision"] == "merged"]
    if len(merged):
        rules = Table(title="Merged pairs by rule")
        rules.add_column("rule")
        rules.add_column("pairs", justify="right")
        for rule, n in merged["rule"].value_counts().items():
            rules.add_row(escape(str(rule)), str(n))
        _console.print(rules)
    links = result.links
    if len(links):
        _console.print("Linked, not merged: " + ", ".join(f"{n} {escape(str(rel))}"
                                                        for rel, n in links["relation"].value_counts().items()))
    _console.print(result.methods_sentence())
    by_id = {r.record_id: r for r in records}

    def with_titles(frame):
        frame = frame.copy()
        frame["title_a"] = [by_id[i].title for i in frame["record_id_a"]]
        frame["title_b"] = [by_id[i].title for i in frame["record_id_b"]]
        frame["citation_a"] = [by_id[i].citation() for i in frame["record_id_a"]]
        frame["citation_b"] = [by_id[i].citation() for i in frame["record_id_b"]]
        return frame

    if review_csv is not None:
        review = with_titles(result.review)
        review["verdict"] = ""  # fill in duplicate / not_duplicate, then pass the file to --decisions
        write_csv(review, review_csv)
        _console.print(f"{len(review)} pairs to review written to {review_csv}")
    if pairs_csv is not None:
        write_csv(with_titles(result.pairs), pairs_csv)
        _console.print(f"{len(result.pairs)} pairs written to {pairs_csv}")
    if groups_csv is not None:
        groups = result.groups()
        write_csv(groups, groups_csv)
        n_grouped = int((groups["group_id"] != "").sum())
        _console.print(f"{len(records)} records ({n_grouped} in duplicate groups) written to {groups_csv}")


def _read_pair_verdicts(path: Path) -> dict[frozenset[str], bool]:
    import csv

    from neuromodmap._utils import restore_formula

    yes, no = {"duplicate", "yes", "y", "1", "true", "merge"}, {"not_duplicate", "no", "n", "0", "false", "keep"}
    out: dict[frozenset[str], bool] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"record_id_a", "record_id_b", "verdict"} - set(reader.fieldnames or [])
            if missing:
                _fail(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, start=2):
                verdict = (row["verdict"] or "").strip().lower()
                if not verdict:
                    continue
                if verdict not in yes | no:
                    _fail(f"{path}, line {line}, field verdict: {verdict!r} is neither duplicate nor not_duplicate")
                # ids as written by --review (restore_formula undoes its defusing)
                out[frozenset((restore_formula(row["record_id_a"]), restore_formula(row["record_id_b"])))] = verdict in yes
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        _fail(f"{path}: cannot read the decisions ({exc})")
    return out


def _profile(profile: str, question: str | None):
    from neuromodmap.literature.criteria import CriteriaError, load_profile

    try:
        return load_profile(profile, question=question)
    except CriteriaError as exc:
        _fail(str(exc))


@app.command()
def criteria(
    db: Path = _DB_OPTION,
    profile: str = typer.Option("default", help="default, pain, depression, or a YAML file."),
    question: str = typer.Option(None, help="Override the review question: pain, depression or both."),
) -> None:
    """Apply the eligibility criteria; every excluded record is stored with its reason."""
    from neuromodmap.literature.screening import ScreeningSession

    con = _open(db)
    prof = _profile(profile, question)
    try:
        session = ScreeningSession(con, prof)
    except ValueError as exc:
        _fail(str(exc))
    counts = session.criteria.counts_by_reason()
    table = Table(title=f"Excluded by the {prof.name} criteria")
    table.add_column("reason")
    table.add_column("records")
    for reason, n in counts.items():
        table.add_row(escape(str(reason)), str(n))
    _console.print(table)
    _console.print(f"{len(session.records)} records are eligible for screening.")


@app.command()
def screen(
    db: Path = _DB_OPTION,
    profile: str = typer.Option("default", help="default, pain, depression, or a YAML file."),
    question: str = typer.Option(None, help="Override the review question: pain, depression or both."),
    model: str = typer.Option("nb", help="nb, logistic or svm."),
    reviewer: str = typer.Option("", help="Your name or initials, stored with each decision."),
    stop_after: int = typer.Option(None, help="Stop after this many irrelevant records in a row."),
    target_share: float = typer.Option(None, help="Stop once this share (0-1) of the records is screened."),
    ignore_stop: bool = typer.Option(False, help="Keep screening past the stopping rule."),
) -> None:
    """Screen titles and abstracts, most relevant first; each decision is saved at once (resumable)."""
    from neuromodmap.literature._terminal import run_screener
    from neuromodmap.literature.screening import ScreeningSession

    con = _open(db)
    prof = _profile(profile, question)
    try:
        session = ScreeningSession(con, prof, model=model, reviewer=reviewer, stop_after_irrelevant=stop_after,
                                   target_share=target_share)
    except ValueError as exc:
        _fail(str(exc))
    run_screener(session, console=_console, ignore_stop=ignore_stop)


@app.command()
def fulltext(
    record_id: str = typer.Argument(..., help="Record id (see the export's notes column)."),
    decision: str = typer.Argument(..., help="include, exclude or not-retrieved"),
    reason: str = typer.Option("", help="Exclusion reason (shown in the PRISMA diagram)."),
    db: Path = _DB_OPTION,
    reviewer: str = typer.Option("", help="Your name or initials."),
) -> None:
    """Record a full-text decision for one record."""
    from neuromodmap.literature.screening import record_decision

    con = _open(db)
    decision = decision.replace("-", "_")
    if decision == "exclude" and not reason:
        _fail("a full-text exclusion needs --reason (PRISMA reports exclusions with reasons)")
    try:
        record_decision(con, record_id, "full_text", decision, reason=reason, reviewer=reviewer)
    except (KeyError, ValueError) as exc:
        _fail(str(exc.args[0] if exc.args else exc))
    _console.print(f"Saved: {record_id} {decision}{' (' + reason + ')' if reason else ''}")


@app.command()
def prisma(
    db: Path = _DB_OPTION,
    out: Path = typer.Option(Path("prisma"), "-o", "--out", help="Output folder."),
    manual: Path = typer.Option(None, help="YAML with hand-entered counts (reports_not_retrieved, ...)."),
    trials_db: Path = typer.Option(None, "--trials-db", help="Trials store whose classified neuromodulation trials "
                                                             "are the records identified from registers "
                                                             "(default: the --db file, if it holds classified trials)."),
    question: str = typer.Option("both", help="Review question deciding which classified trials count as "
                                              "register records: pain, depression or both."),
) -> None:
    """Draw the PRISMA 2020 flow diagram (SVG + PNG) and write its counts table beside it."""
    from neuromodmap.literature.prisma import load_manual_counts, prisma_flow

    con = _open(db)
    trials_con = _open_trials(db, trials_db)
    try:
        counts = load_manual_counts(manual) if manual else None
        flow = prisma_flow(con, counts, trials_con=trials_con, question=question, trials_db=str(trials_db or db))
    except ValueError as exc:
        _fail(str(exc))
    finally:
        if trials_con is not None:
            trials_con.close()
    from neuromodmap.literature._reportlet import prisma_section

    paths = flow.write(out)
    paths.append(prisma_section(con, flow, out).write(out))
    _console.print(flow.to_frame().to_string(index=False))
    _console.print(escape(flow.methods_sentence()))
    _console.print("Wrote " + ", ".join(str(p) for p in paths))


def _open_trials(db: Path, trials_db: Path | None):
    """A read-only connection to a separate trials store, or None when it is the --db file."""
    if trials_db is None or trials_db.resolve() == db.resolve():
        return None
    if not trials_db.exists():
        _fail(f"{trials_db}: no such trials store; run `neuromodmap trials import` first")
    import duckdb

    from neuromodmap.store import connect

    try:
        return connect(trials_db, read_only=True)
    except (duckdb.Error, OSError) as exc:
        from neuromodmap.errors import user_line

        _fail(user_line(exc) or f"{trials_db}: cannot open the trials store ({exc})")


@app.command("link-trials")
def link_trials_(
    db: Path = _DB_OPTION,
    trials_db: Path = typer.Option(None, "--trials-db", help="Trials store (default: the --db file itself)."),
    out: Path = typer.Option(None, "-o", "--out", help="Write the counts and the links as CSV into this folder."),
) -> None:
    """Link records to registered trials: registry ids the records quote, PMIDs/DOIs the registry cites."""
    from neuromodmap._utils import write_csv
    from neuromodmap.literature.trial_links import link_trials

    con = _open(db)
    trials_con = _open_trials(db, trials_db)
    try:
        report = link_trials(con, trials_con, trials_db=str(trials_db or db))
    finally:
        if trials_con is not None:
            trials_con.close()
    table = Table(title="Registry ids quoted by the records")
    for column in ("registry", "ids", "in trials store", "not in trials store"):
        table.add_column(column)
    for row in report.by_registry.itertuples(index=False):
        table.add_row(escape(str(row.name)), str(row.ids), str(row.in_trials_store), str(row.not_in_trials_store))
    _console.print(table)
    _console.print(escape(report.summary()))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in (("trial_link_counts.csv", report.to_frame()), ("trial_links.csv", report.links),
                            ("trial_link_registries.csv", report.by_registry)):
            write_csv(frame, out / name)
        _console.print(f"Wrote {out / 'trial_link_counts.csv'}, trial_links.csv, trial_link_registries.csv")


@app.command()
def export(
    db: Path = _DB_OPTION,
    out: Path = typer.Option(Path("extraction_sheet.csv"), "-o", "--out", help="CSV or XLSX."),
    stage: str = typer.Option(None, help="title_abstract or full_text (default: the latest stage with decisions)."),
) -> None:
    """Export included records to the evidence extraction sheet, citation fields pre-filled."""
    from neuromodmap.literature.export import export_extraction_sheet

    con = _open(db)
    try:
        paths, n = export_extraction_sheet(con, out, stage=stage)
    except ValueError as exc:  # SheetError: an unsupported suffix
        _fail(str(exc))
    _console.print(f"{n} included records written to {paths[0]}"
                   + (f" (data dictionary: {', '.join(str(p) for p in paths[1:])})" if len(paths) > 1 else ""))


@app.command()
def pubmed(
    query: str = typer.Argument(..., help="PubMed query, e.g. '\"spinal cord stimulation\"[tiab] AND pain'."),
    db: Path = _DB_OPTION,
    mindate: str = typer.Option(None, help="Earliest publication date, e.g. 2000/01/01."),
    maxdate: str = typer.Option(None, help="Latest publication date, e.g. 2025/04/30."),
    api_key: str = typer.Option(None, envvar="NCBI_API_KEY", help="NCBI API key (10 requests/s instead of 3)."),
    email: str = typer.Option(None, envvar="NCBI_EMAIL", help="Contact e-mail sent to NCBI."),
    batch_size: int = typer.Option(200, help="Records per efetch request."),
    max_records: int = typer.Option(None, help="Fetch at most this many records."),
    base_url: str = typer.Option(None, hidden=True),
) -> None:
    """Search PubMed live (E-utilities) and import the hits."""
    from neuromodmap._utils import progress_bar
    from neuromodmap.literature.eutils import EUTILS_BASE, EUtilsClient, EUtilsError
    from neuromodmap.literature.store import save_import

    con = _open(db, create=True)
    try:
        with EUtilsClient(api_key=api_key, email=email, base_url=base_url or EUTILS_BASE) as client, \
                progress_bar() as bar:
            task = bar.add_task("efetch", total=None)
            result = client.search(query, mindate=mindate, maxdate=maxdate, batch_size=batch_size,
                                   max_records=max_records,
                                   on_batch=lambda done, total: bar.update(task, completed=done, total=total))
    except EUtilsError as exc:
        _fail(str(exc))
    save_import(con, result)
    _console.print(f"{len(result.records)} PubMed records imported ({result.provenance.extra['count']} hits); "
                   f"{result.n_skipped} skipped.")


@app.command()
def simulate(
    dataset: Path = typer.Argument(..., help="Labelled records (CSV/XLSX/RIS...) with a 0/1 label column."),
    label: str = typer.Option("label_included", "--label", help="Column holding the 0/1 decisions."),
    seed: int = typer.Option(0, help="Seed of the prior records (and of the random baseline)."),
    repeat: int = typer.Option(1, help="Run seeds seed, seed+1, ... and summarise."),
    model: str = typer.Option("nb", help="nb, logistic or svm."),
    balance: str = typer.Option(None, help="Class balance: double (ASReview's resampling), weighted or none "
                                          "[default: the screener's]."),
    fields: str = typer.Option(None, help="Record fields the model reads, comma-separated, from title, abstract, "
                                         "keywords (keywords = keywords + MeSH terms) [default: the screener's]."),
    ngram_max: int = typer.Option(None, help="Longest word n-gram in the TF-IDF features [default: the screener's]."),
    sublinear_tf: bool = typer.Option(None, "--sublinear-tf/--raw-tf",
                                      help="1 + log(term count) instead of raw counts [default: the screener's]."),
    n_prior_included: int = typer.Option(1, help="Relevant records given as prior knowledge."),
    n_prior_excluded: int = typer.Option(1, help="Irrelevant records given as prior knowledge."),
    out: Path = typer.Option(Path("simulation"), "-o", "--out", help="Output folder."),
    require_abstract: bool = typer.Option(False, help="Leave out records without an abstract (as Ferdinands 2020 "
                                                      "did for ASReview's published simulations)."),
) -> None:
    """Simulate active-learning screening on a labelled dataset; writes simulation.json + recall curve."""
    from neuromodmap._utils import atomic_write
    from neuromodmap.literature import activelearning as al
    from neuromodmap.literature.activelearning import simulate as run_simulation
    from neuromodmap.literature.io import read_records
    from neuromodmap.literature.records import LiteratureImportError

    if model not in al.MODELS:
        _fail(f"unknown model {model!r}; choose one of {', '.join(al.MODELS)}")
    balance = balance or al.DEFAULT_BALANCE
    if balance not in al.BALANCES:
        _fail(f"unknown balance strategy {balance!r}; choose one of {', '.join(al.BALANCES)}")
    field_list = [f.strip() for f in fields.split(",") if f.strip()] if fields else list(al.DEFAULT_FIELDS)
    if not field_list or any(f not in al.FIELDS for f in field_list):
        _fail(f"--fields takes a comma-separated list from {', '.join(al.FIELDS)}")
    ngram_max = ngram_max or al.DEFAULT_NGRAM_MAX
    sublinear_tf = al.DEFAULT_SUBLINEAR_TF if sublinear_tf is None else sublinear_tf
    try:
        result = read_records(dataset)
    except LiteratureImportError as exc:
        _fail(str(exc))
    records = result.records
    if require_abstract:
        records = [r for r in records if r.abstract.strip()]
    missing = [r.source_position for r in records if r.extra.get(label, "").strip() not in ("0", "1", "0.0", "1.0")]
    if not records or label not in records[0].extra:
        columns = ", ".join(records[0].extra) if records else "none"
        _fail(f"{dataset}: no label column {label!r} (other columns: {columns})")
    if missing:
        _fail(f"{dataset}: column {label!r} must hold 0 or 1; rows {missing[:10]} do not")
    texts = [al.record_text(r, field_list) for r in records]
    labels = [int(float(r.extra[label])) for r in records]
    runs = []
    for k in range(repeat):
        try:
            sim = run_simulation(texts, labels, model=model, seed=seed + k, n_prior_included=n_prior_included,
                                 n_prior_excluded=n_prior_excluded, balance=balance, ngram_max=ngram_max,
                                 sublinear_tf=sublinear_tf, fields=",".join(field_list), dataset=str(dataset),
                                 label_column=label)
        except ValueError as exc:
            _fail(str(exc))
        target = out if repeat == 1 else out / f"seed_{seed + k}"
        sim.write(target)
        if repeat == 1:
            from neuromodmap.literature._reportlet import simulation_section

            simulation_section(sim, target).write(target)
        runs.append(sim)
        _console.print(f"seed {seed + k}: WSS@95 {sim.wss_95:.1%} (random {sim.random_wss_95:.1%}), "
                       f"recall@10% {sim.recall_at_10pct:.1%}, 95% recall after {sim.n_screened_at_95} records")
    if repeat > 1:
        import numpy as np

        wss = np.array([r.wss_95 for r in runs])
        summary = {"dataset": str(dataset), "label_column": label, "model": model, "balance": balance,
                   "fields": ",".join(field_list), "features": runs[0].features,
                   "n_records": runs[0].n_records, "n_included": runs[0].n_included,
                   "seeds": [r.seed for r in runs], "wss_95": float(wss.mean()), "wss_95_sd": float(wss.std(ddof=1)),
                   "recall_at_10pct": float(np.mean([r.recall_at_10pct for r in runs])),
                   "random_wss_95": float(np.mean([r.random_wss_95 for r in runs])),
                   "runs": [r.to_dict() for r in runs]}
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / "simulation.json", "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)
        _console.print(f"mean WSS@95 over {repeat} seeds: {wss.mean():.1%} (sd {wss.std(ddof=1):.1%})")
    _console.print(runs[-1].methods_sentence())
    _console.print(f"Wrote {out / 'simulation.json'}")
