"""The evidence stage's part of the report (private): pooled estimates, studies, plots, methods.

Written by :meth:`MetaReport.write` (``neuromodmap evidence meta``) as ``section.json`` beside
its tables and plots; :func:`neuromodmap.report.build_report` assembles it with the other stages.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from neuromodmap._utils import restore_formula, write_csv
from neuromodmap.evidence._escalc import MEASURES
from neuromodmap.report import Block, Figure, Headline, Section, Source, Table

__all__ = ["meta_section", "reproduction_table"]

_CAPTIONS = {
    "forest": "Forest plot: each study's effect with its 95 % CI (box size: weight), the pooled estimate of each "
              "subgroup and overall (diamonds) and the prediction intervals.",
    "funnel": "Funnel plot of the effects against their standard errors, with the studies trim-and-fill adds "
              "(open circles).",
    "bubble": "Meta-regression of the effects on each study site's connectivity to the seed (bubble size: weight).",
}


def _num(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or value is pd.NA:
        return ""
    return f"{value:.{digits}f}"


def _ci(lb, ub, digits: int = 2) -> str:
    a, b = _num(lb, digits), _num(ub, digits)
    return f"{a} to {b}" if a and b else ""


def _p(value) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def _write(frame: pd.DataFrame, path: Path) -> None:
    write_csv(frame, path)


def reproduction_table(reproduced: pd.DataFrame) -> pd.DataFrame:
    """:func:`neuromodmap.evidence.datasets.reproduce` as a display table: published beside reproduced."""
    return pd.DataFrame({
        "analysis": reproduced["analysis"],
        "k": reproduced["k"],
        "model": reproduced["model"],
        "published RR": [_num(v) for v in reproduced["published_rr"]],
        "published 95% CI": [_ci(a, b) for a, b in zip(reproduced["published_ci_lb"], reproduced["published_ci_ub"],
                                                        strict=True)],
        "reproduced RR": [_num(v) for v in reproduced["rr"]],
        "reproduced 95% CI": [_ci(a, b) for a, b in zip(reproduced["ci_lb"], reproduced["ci_ub"], strict=True)],
        "reproduced (3 decimals)": [f"{r:.3f} ({a:.3f} to {b:.3f})" for r, a, b in
                                    zip(reproduced["rr"], reproduced["ci_lb"], reproduced["ci_ub"], strict=True)],
        "I² (%)": [_num(v, 1) for v in reproduced["i2"]],
    })


def meta_section(report, out: str | Path, *, title: str | None = None, reproduced: pd.DataFrame | None = None,
                 reproduced_caption: str = "", by_target: pd.DataFrame | None = None, comparison: str = "",
                 sources: list[Source] | None = None) -> Section:
    """The report section of a :class:`MetaReport` written in ``out`` (its figures as PNG there).

    ``reproduced``: published against reproduced estimates (:func:`datasets.reproduce`), shown as a
    table and a headline. ``comparison`` names what was pooled in the headline (e.g. "rTMS vs sham,
    response"). ``by_target``: the pooled effect per stimulation target
    (:func:`pool_by_target`; read from ``by_target.csv`` when the report was split by target).
    """
    out = Path(out)
    m = report.measure
    pooled = report.pooled_table()
    bt = "estimate_bt" in pooled
    label = MEASURES.get(m, m)
    if bt:
        label = label.removeprefix("log ")
    est, lb, ub = ("estimate_bt", "ci_lb_bt", "ci_ub_bt") if bt else ("estimate", "ci_lb", "ci_ub")
    pi_lb, pi_ub = ("pi_lb_bt", "pi_ub_bt") if bt else ("pi_lb", "pi_ub")
    display = pd.DataFrame({
        "subgroup": pooled["subgroup"],
        "k": pooled["k"],
        m: [_num(v) for v in pooled[est]],
        "95% CI": [_ci(a, b) for a, b in zip(pooled[lb], pooled[ub], strict=True)],
        "95% PI": [_ci(a, b) for a, b in zip(pooled[pi_lb], pooled[pi_ub], strict=True)],
        "p": [_p(v) for v in pooled["pval"]],
        "tau²": [_num(v, 3) for v in pooled["tau2"]],
        "I² (%)": [_num(v, 1) for v in pooled["i2"]],
        "Q (df), p": [f"{_num(q)} ({int(df)}), {_p(p)}" for q, df, p in
                      zip(pooled["q"], pooled["q_df"], pooled["q_p"], strict=True)],
    })
    _write(display, out / "pooled_report.csv")
    studies = report.study_table()
    transform = math.exp if bt else float
    by = report.by
    study_display = pd.DataFrame({
        "study": studies["study"],
        **({by: studies[by]} if by and by in studies else {}),
        m: [_num(transform(v)) for v in studies["yi"]],
        "95% CI": [_ci(transform(a), transform(b)) for a, b in zip(studies["ci_lb"], studies["ci_ub"], strict=True)],
        "from": studies["source"] if "source" in studies else "arm data",
        "target": studies["target"].fillna("") if "target" in studies else "",
    })
    _write(study_display, out / "studies_report.csv")
    tables = [
        Table(id="pooled", title=f"Pooled {label}s", csv="pooled_report.csv",
              caption=f"Random-effects estimates ({report.method}) per subgroup and overall"
                      + (", back-transformed to ratios" if bt else "") + "."),
        Table(id="studies", title="Studies", csv="studies_report.csv",
              caption=f"Each study's {label} and 95 % CI, and where its effect came from (arm data, or the effect "
                      "and CI the source reported)."),
    ]
    if not report.small_study.empty:
        small = report.small_study.copy()
        small_display = pd.DataFrame({
            "analysis": small["analysis"], "statistic": [_num(v) for v in small["statistic"]],
            "p": [_p(v) for v in small["pval"]],
            "estimate (95% CI)": [f"{_num(e)} ({_ci(a, b)})" for e, a, b in
                                  zip(small["estimate"], small["ci_lb"], small["ci_ub"], strict=True)],
            "studies filled": ["" if pd.isna(k) else f"{int(k)} ({s})" for k, s in zip(small["k0"], small["side"],
                                                                                       strict=True)],
        })
        tables.append(Table.from_frame("small_study", "Small-study effects", small_display,
                                       caption="Egger's regression test and trim-and-fill (estimates on the "
                                               "analysis scale)."))
    if by_target is None and (out / "by_target.csv").is_file():
        by_target = pd.read_csv(out / "by_target.csv").map(restore_formula)
    if by_target is not None and len(by_target):
        bt_cols = "estimate_bt" in by_target and by_target["estimate_bt"].notna().any()
        e, a, b = ("estimate_bt", "ci_lb_bt", "ci_ub_bt") if bt_cols else ("estimate", "ci_lb", "ci_ub")
        targets = pd.DataFrame({
            "target": by_target["target"].fillna(""),
            "name": by_target.get("target_name", by_target["target"]).fillna(""),
            "k": by_target["k"],
            m: [_num(v) for v in by_target[e]],
            "95% CI": [_ci(x, y) for x, y in zip(by_target[a], by_target[b], strict=True)],
            "model": by_target.get("model", ""),
            "studies": by_target.get("studies", ""),
        })
        tables.append(Table.from_frame("by_target", f"Pooled {label} per stimulation target", targets,
                                       caption="The studies pooled by the target their publications name (the "
                                               "connectome section draws these effects at the targets' "
                                               "coordinates); studies whose site the sources do not give are "
                                               "counted, not pooled."))
    if report.metareg is not None and (out / "metaregression.csv").is_file():
        tables.append(Table(id="metaregression", title="Connectivity meta-regression", csv="metaregression.csv"))
    figures = [Figure(id=name, src=f"{name}.png", caption=_CAPTIONS.get(name, name))
               for name in report.figures if (out / f"{name}.png").is_file()]
    overall = pooled[pooled["subgroup"] == "overall"]
    row = overall.iloc[0] if len(overall) else pooled.iloc[0]
    headlines = [Headline(
        label=(f"{comparison}: pooled " if comparison else "Pooled ") + f"{label} ({row['subgroup']}, k = {int(row['k'])})",
        value=f"{m} {_num(row[est])} ({_ci(row[lb], row[ub])})",
        detail=f"95 % CI; I² = {_num(row['i2'], 1)} %, {report.method} random effects", table="pooled")]
    blocks = [Block(kind="table", ref="pooled"), *[Block(kind="figure", ref=f.id) for f in figures[:1]],
              Block(kind="table", ref="studies")]
    if reproduced is not None:
        repro = reproduction_table(reproduced)
        tables.append(Table.from_frame("reproduction", "The published pooled estimates, reproduced", repro,
                                       caption=reproduced_caption))
        target = repro[repro["analysis"] == "overall"]
        r = target.iloc[0] if len(target) else repro.iloc[0]
        headlines.append(Headline(label=f"Published pooled {m} ({r['analysis']}), reproduced",
                                  value=f"{r['reproduced RR']} ({r['reproduced 95% CI']})",
                                  detail=f"published {r['published RR']} ({r['published 95% CI']})",
                                  table="reproduction"))
        blocks.insert(0, Block(kind="table", ref="reproduction"))
    methods = report.methods_paragraph()
    prov = report.provenance
    if sources is None:
        sources = [Source.from_provenance("Extraction sheet", prov)]
    return Section(
        stage="evidence", id=re.sub(r"[^a-z0-9_-]+", "-", f"evidence-{out.resolve().name.lower()}")[:64],
        title=title or f"Meta-analysis: {label}" + (f" by {by}" if by else ""),
        summary=f"{int(row['k'])} studies pooled: {m} {_num(row[est])} (95 % CI {_ci(row[lb], row[ub])}), "
                f"I² = {_num(row['i2'], 1)} %.",
        headlines=headlines, blocks=blocks, figures=figures, tables=tables, methods=methods, sources=sources,
    )
