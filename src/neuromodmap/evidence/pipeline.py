"""From an extraction sheet to pooled estimates, figures, an HTML section and a methods paragraph.

Data flow: :func:`read_sheet` (import) -> :func:`validate_rows` -> :func:`effect_sizes`
(escalc) -> :func:`rma` per subgroup (analyse) -> :class:`MetaReport` (tables, figures, HTML,
methods text; written atomically by :meth:`MetaReport.write`).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import platform
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy
from jinja2 import Environment, PackageLoader, select_autoescape
from scipy.stats import chi2

from neuromodmap import __version__
from neuromodmap._utils import atomic_write, write_csv
from neuromodmap.evidence._errors import MetaAnalysisError, MetaAnalysisWarning, SheetError
from neuromodmap.evidence._escalc import MEASURES, escalc
from neuromodmap.evidence._io import read_sheet
from neuromodmap.evidence._metareg import MODERATORS, connectivity_metaregression
from neuromodmap.evidence._methods import regtest, trimfill
from neuromodmap.evidence._rma import METHODS, RMAResult, SubgroupResult, rma
from neuromodmap.evidence._rma_mv import RMAMVResult, rma_mv, robust
from neuromodmap.evidence._transforms import back_transform
from neuromodmap.evidence.sheet import (
    OUTCOME_MEASURES,
    CellProblem,
    ExtractionRecord,
    validate_rows,
)
from neuromodmap.provenance import Provenance

__all__ = ["effect_sizes", "run_meta", "MetaReport", "SheetValidationError", "CITATIONS", "GROUPABLE"]

#: columns a meta-analysis can be split by
GROUPABLE = ("modality", "target", "indication", "design", "sham_type", "outcome_measure", "condition", "subgroup")

#: measures a reported effect and 95% CI can be pooled on (generic inverse variance); ratios on the log scale
#: measures the extraction sheet's columns can feed (arm means/SDs, counts over n)
SHEET_MEASURES = ("SMD", "MD", "RR", "OR", "RD", "PLO", "PR", "PFT")
GENERIC_MEASURES = {"SMD": False, "MD": False, "RD": False, "RR": True, "OR": True}
_Z975 = 1.959963984540054

CITATIONS = {
    "metafor": "Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw. 2010;36(3):1-48.",
    "DL": "DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials. 1986;7(3):177-188.",
    "REML": "Viechtbauer W. Bias and efficiency of meta-analytic variance estimators in the random-effects model. J Educ Behav Stat. 2005;30(3):261-293.",
    "ML": "Viechtbauer W. Bias and efficiency of meta-analytic variance estimators in the random-effects model. J Educ Behav Stat. 2005;30(3):261-293.",
    "PM": "Paule RC, Mandel J. Consensus values and weighting factors. J Res Natl Bur Stand. 1982;87(5):377-385.",
    "HE": "Hedges LV. A random effects model for effect sizes. Psychol Bull. 1983;93(2):388-395.",
    "SJ": "Sidik K, Jonkman JN. Simple heterogeneity variance estimation for meta-analysis. J R Stat Soc C. 2005;54(2):367-384.",
    "knha": "Hartung J, Knapp G. On tests of the overall treatment effect in meta-analysis with normally distributed responses. Stat Med. 2001;20(12):1771-1782.",
    "I2": "Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med. 2002;21(11):1539-1558.",
    "QP": "Viechtbauer W. Confidence intervals for the amount of heterogeneity in meta-analysis. Stat Med. 2007;26(1):37-52.",
    "SMD": "Hedges LV. Distribution theory for Glass's estimator of effect size and related estimators. J Educ Stat. 1981;6(2):107-128.",
    "egger": "Egger M, Davey Smith G, Schneider M, Minder C. Bias in meta-analysis detected by a simple, graphical test. BMJ. 1997;315(7109):629-634.",
    "trimfill": "Duval S, Tweedie R. Trim and fill: a simple funnel-plot-based method of testing and adjusting for publication bias in meta-analysis. Biometrics. 2000;56(2):455-463.",
    "PFT": "Miller JJ. The inverse of the Freeman-Tukey double arcsine transformation. Am Stat. 1978;32(4):138.",
    "three-level": "Van den Noortgate W, López-López JA, Marín-Martínez F, Sánchez-Meca J. Three-level meta-analysis "
                   "of dependent effect sizes. Behav Res Methods. 2013;45(2):576-594.",
    "robust": "Hedges LV, Tipton E, Johnson MC. Robust variance estimation in meta-regression with dependent effect "
              "size estimates. Res Synth Methods. 2010;1(1):39-65.",
    "konstantopoulos": "Konstantopoulos S. Fixed effects and variance components estimation in three-level "
                       "meta-analysis. Res Synth Methods. 2011;2(1):61-76.",
}

#: sham_type codes whose control arm is a sham (the forest plot then reads "favours sham")
_SHAM_CODES = {"sham_coil", "tilted_coil", "sham_stimulation", "subthreshold", "placebo_device"}


class SheetValidationError(SheetError):
    """The sheet has bad cells; ``problems`` lists every one (row, column, message)."""

    def __init__(self, path: Path, problems: list[CellProblem]):
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s) in the sheet:\n"
                         + "\n".join(f"  {p}" for p in problems))


_MEASURE_COLUMNS = {"SMD": ("active_sd", "control_sd"), "MD": ("active_sd", "control_sd")}


def _unusable_effects(effects: pd.DataFrame, records: list, measure: str) -> list[CellProblem]:
    """A problem for every row whose effect or variance is not a finite number (e.g. an SD of 1e-300).

    Such a row used to be dropped from the pooling without a word.
    """
    if not len(effects):
        return []
    by_row = dict(records)
    out = []
    for row in effects[~(np.isfinite(effects["yi"]) & np.isfinite(effects["vi"]))].itertuples():
        rec = by_row.get(row.row)
        columns = _MEASURE_COLUMNS.get(measure, ())
        tiny = [c for c in columns if rec is not None and getattr(rec, c) is not None and 0 < getattr(rec, c) < 1e-6]
        if tiny:
            out.append(CellProblem(row.row, ", ".join(tiny), f"an SD of {getattr(rec, tiny[0]):g} makes the {measure} "
                                   "infinite; check the value (an SD that small is a typing slip)",
                                   getattr(rec, tiny[0])))
        elif row.source == "arm data":
            out.append(CellProblem(row.row, ", ".join(columns) or "arm data",
                                   f"the {measure} of this row is not a finite number (yi={row.yi}, vi={row.vi}); "
                                   "check the arm values"))
    return out


def _label(record: ExtractionRecord) -> str:
    return record.citation or record.study_id


def effect_sizes(records: list[tuple[int, ExtractionRecord]], measure: str, outcome: str = "responders",
                 by: str | None = None) -> tuple[pd.DataFrame, list[CellProblem]]:
    """Effect sizes for validated sheet rows; rows missing what the measure needs become problems.

    ``records`` pairs each record with its sheet row number. For SMD/MD the arm means,
    SDs and ns are used (active minus control); for RR/OR/RD the ``outcome`` counts
    (responders or remitters) over n; for PLO/PR/PFT the active arm alone.
    """
    measure = measure.upper()
    if measure not in MEASURES:
        raise MetaAnalysisError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    if measure not in SHEET_MEASURES:
        raise MetaAnalysisError(f"{measure} needs data the extraction sheet does not hold; "
                                f"use {', '.join(SHEET_MEASURES)} (or escalc() directly)")
    if outcome not in ("responders", "remitters"):
        raise MetaAnalysisError("outcome must be 'responders' or 'remitters'")
    if measure in ("SMD", "MD"):
        needed = ["active_n", "active_mean", "active_sd", "control_n", "control_mean", "control_sd"]
    elif measure in ("RR", "OR", "RD"):
        needed = ["active_n", f"active_{outcome}", "control_n", f"control_{outcome}"]
    else:
        needed = ["active_n", f"active_{outcome}"]
    problems: list[CellProblem] = []
    kept: list[tuple[int, ExtractionRecord]] = []
    generic: list[tuple[int, ExtractionRecord]] = []
    for line, rec in records:
        missing = [c for c in needed if getattr(rec, c) is None]
        if missing and rec.effect is not None:
            bad = _generic_problem(rec, measure)
            if bad:
                problems.append(CellProblem(line, *bad))
                continue
            missing = []
            target_list = generic
        else:
            target_list = kept
        for c in missing:
            problems.append(CellProblem(line, c, f"empty, but {measure} needs it"))
        if by is not None and getattr(rec, by) is None:
            problems.append(CellProblem(line, by, f"empty, but the analysis is split by {by}"))
            continue
        if not missing:
            target_list.append((line, rec))
    if not kept and not generic:
        return pd.DataFrame(columns=["row", "study", "yi", "vi"]), problems

    def col(name, rows=kept):
        return [getattr(r, name) for _, r in rows]

    labels = [_label(r) for _, r in kept]
    frames = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetaAnalysisWarning)
        if kept:
            if measure in ("SMD", "MD"):
                es = escalc(measure, m1i=col("active_mean"), sd1i=col("active_sd"), n1i=col("active_n"),
                            m2i=col("control_mean"), sd2i=col("control_sd"), n2i=col("control_n"), slab=labels)
            elif measure in ("RR", "OR", "RD"):
                # the sheet keeps its convention: double-zero studies carry no information on a
                # relative measure and are left out (metafor's escalc default keeps them)
                es = escalc(measure, ai=col(f"active_{outcome}"), n1i=col("active_n"),
                            ci=col(f"control_{outcome}"), n2i=col("control_n"), slab=labels,
                            drop00=measure != "RD")
            else:
                es = escalc(measure, xi=col(f"active_{outcome}"), ni=col("active_n"), slab=labels)
            part = es.reset_index()
            part.insert(0, "row", [line for line, _ in kept])
            part["source"] = "arm data"
            frames.append((part, kept))
    if generic:
        frames.append((_generic_effects(generic, measure), generic))
    parts = []
    for part, rows in frames:
        for name in ("study_id", "modality", "target", "x", "y", "z", "indication", "design", "sham_type",
                     "outcome_measure", "condition", "subgroup", "time_point_weeks", "year"):
            part[name] = col(name, rows)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    frame = frame.sort_values("row", kind="stable").reset_index(drop=True)
    if "ni" not in frame:
        frame["ni"] = np.nan
    frame.attrs["measure"] = measure
    frame.attrs["notes"] = [str(w.message) for w in caught]
    return frame, problems


def _generic_problem(rec: ExtractionRecord, measure: str) -> tuple[str, str] | None:
    """Why a reported effect + CI cannot be used for ``measure`` (None when it can)."""
    if measure not in GENERIC_MEASURES:
        return ("effect", f"a reported effect can be pooled as {', '.join(GENERIC_MEASURES)}, not {measure}; "
                          "give the arm data instead")
    if rec.effect_ci_lb is None or rec.effect_ci_ub is None:
        return ("effect_ci_lb", "empty, but effect is given: its 95% CI gives the study's weight")
    if GENERIC_MEASURES[measure] and min(rec.effect, rec.effect_ci_lb, rec.effect_ci_ub) <= 0:
        return ("effect", f"{measure} is a ratio: effect and CI must be above 0 "
                          f"(got {rec.effect:g} [{rec.effect_ci_lb:g}, {rec.effect_ci_ub:g}])")
    return None


def _generic_effects(rows: list[tuple[int, ExtractionRecord]], measure: str) -> pd.DataFrame:
    """yi, vi from reported effects and 95% CIs: log scale for ratios, SE = CI width / (2 x 1.96)."""
    ratio = GENERIC_MEASURES[measure]
    tf = np.log if ratio else (lambda a: np.asarray(a, float))
    eff = tf(np.array([r.effect for _, r in rows], float))
    lb = tf(np.array([r.effect_ci_lb for _, r in rows], float))
    ub = tf(np.array([r.effect_ci_ub for _, r in rows], float))
    sei = (ub - lb) / (2 * _Z975)
    return pd.DataFrame({"row": [line for line, _ in rows], "study": [_label(r) for _, r in rows],
                         "yi": eff, "vi": sei**2, "ni": np.nan, "source": "reported effect and 95% CI"})


@dataclass(eq=False)
class MetaReport:
    """Everything ``neuromodmap evidence meta`` produces, held in memory until written."""

    measure: str
    method: str
    test: str
    by: str | None
    effects: pd.DataFrame
    result: RMAResult | SubgroupResult
    small_study: pd.DataFrame
    notes: list[str]
    provenance: Provenance
    figures: dict[str, Any] = field(default_factory=dict)
    #: connectivity meta-regression (``run_meta(..., moderator="connectivity")``)
    metareg: Any = None
    #: True when some study contributes several rows: the pooled models are three-level (``rma_mv``)
    multilevel: bool = False

    @property
    def overall(self) -> RMAResult | RMAMVResult | None:
        return self.result.overall if isinstance(self.result, SubgroupResult) else self.result

    def pooled_table(self) -> pd.DataFrame:
        frame = self.result.to_frame()
        if not isinstance(self.result, SubgroupResult):
            frame.insert(0, "subgroup", "overall")
        transf = back_transform(self.measure, self.effects["ni"].to_numpy() if "ni" in self.effects else None)
        if transf is not None:
            for c in ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub"):
                frame[f"{c}_bt"] = [float(transf(v)) for v in frame[c]]
        return frame

    def study_table(self) -> pd.DataFrame:
        out = self.effects.copy()
        crit = 1.959963984540054
        out["ci_lb"] = out["yi"] - crit * np.sqrt(out["vi"])
        out["ci_ub"] = out["yi"] + crit * np.sqrt(out["vi"])
        return out

    def methods_paragraph(self) -> str:
        """A methods paragraph: measure, estimator, CI method, heterogeneity, software, citations."""
        fit = self.overall
        m = self.measure
        # the measure's name as a phrase of its own ("log odds ratio (Peto's method)" has no plural)
        first = f"The effect size was the {MEASURES[m]} ({m})"
        if m == "SMD":
            first += ", with the exact small-sample correction"
        first += " with metafor's formulas"
        if m in ("RR", "OR", "RD", "PLO", "PR"):
            first += " (1/2 added to every cell of a study with a zero cell)"
        if m in ("SMD", "MD"):
            first += "; negative values favour the active arm on scales where lower scores are better"
        parts = [first]
        back = {"RR": "ratios (exponentiated)", "OR": "ratios (exponentiated)",
                "PLO": "proportions (inverse logit)",
                "PFT": "proportions (inverse Freeman-Tukey with the harmonic mean of the sample sizes; Miller 1978)",
                "ZCOR": "correlations (inverse Fisher z)"}.get(m)
        if back:
            parts[0] += f". Pooled estimates and intervals are also reported back-transformed to {back}"
        parts[0] += "."
        ref = fit if fit is not None else next(iter(self.result.fits.values()))
        parts.append(ref.methods_sentence())
        if isinstance(self.result, SubgroupResult):
            if self.multilevel:
                parts.append("Within a subgroup whose studies each contribute one row, a univariate "
                             "random-effects model was used instead.")
            parts.append(f"Separate models were fitted within each {self.by}{'' if self.by == 'subgroup' else ' subgroup'}, and subgroup differences "
                         f"were tested with the Q-between statistic (df = number of subgroups - 1).")
        if self.multilevel:
            parts.append("Egger's test and trim-and-fill assume independent effects and were not run.")
        if not self.small_study.empty:
            parts.append("Small-study effects were assessed with Egger's regression test (standard error as "
                         "moderator) and the trim-and-fill method (L0 estimator); with fewer than 10 studies "
                         "these tests have little power.")
        parts.append(
            f"Analyses used neuromodmap {__version__} (Python {platform.python_version()}, NumPy {np.__version__}, "
            f"SciPy {scipy.__version__}), whose estimators reproduce R's metafor (Viechtbauer 2010)."
        )
        keys = ["metafor", ref.method if ref.method in CITATIONS else None,
                "three-level" if self.multilevel else None, "konstantopoulos" if self.multilevel else None,
                "robust" if getattr(ref, "vbest", None) else None,
                "I2", "QP",
                "knha" if self.test == "knha" else None, "SMD" if m == "SMD" else None,
                "PFT" if m == "PFT" else None]
        if not self.small_study.empty:
            keys += ["egger", "trimfill"]
        refs = [CITATIONS[k] for k in dict.fromkeys(k for k in keys if k)]
        if (self.effects.get("source") == "reported effect and 95% CI").any():
            n = int((self.effects["source"] == "reported effect and 95% CI").sum())
            parts.insert(1, f"For {n} row{'' if n == 1 else 's'} without arm data, the reported effect and "
                            f"its 95% confidence interval were used (generic inverse variance: "
                            f"{'log ' if GENERIC_MEASURES.get(m) else ''}effect, SE = CI width / 3.92).")
        text = " ".join(parts) + "\n\nReferences\n" + "\n".join(f"- {r}" for r in refs)
        if self.metareg is not None:
            body, _, mrefs = self.metareg.methods_paragraph().partition("\n\nReferences\n")
            text = " ".join(parts) + " " + body + "\n\nReferences\n" + "\n".join(f"- {r}" for r in refs) + "\n" + mrefs
        return text

    def html(self) -> str:
        """An HTML section (Jinja2, autoescaped) to drop into a report."""
        env = Environment(loader=PackageLoader("neuromodmap.evidence", "templates"),
                          autoescape=select_autoescape(default=True, default_for_string=True))
        template = env.get_template("meta_section.html.j2")
        pooled = self.pooled_table()
        return template.render(
            measure=self.measure, measure_label=MEASURES[self.measure], method=METHODS[self.method],
            by=self.by, pooled=pooled.to_dict("records"), studies=self.study_table().to_dict("records"),
            small_study=self.small_study.to_dict("records"), notes=self.notes,
            methods=self.methods_paragraph(), provenance=self.provenance,
            references=[line[2:] for line in self.methods_paragraph().split("\n") if line.startswith("- ")], has_bt="estimate_bt" in pooled,
            fmt=_fmt, has_funnel="funnel" in self.figures, has_forest="forest" in self.figures,
            metareg=self.metareg, metareg_coefs=(self.metareg.coef_table().reset_index().to_dict("records")
                                                 if self.metareg is not None else []),
            metareg_sites=(self.metareg.table().to_dict("records") if self.metareg is not None else []),
            has_bubble="bubble" in self.figures, multilevel=self.multilevel,
        )

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write tables (CSV), forest/funnel plots (PNG, SVG), report.html, methods.md, summary.txt and the
        report section (``section.json``)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []

        def csv_out(name: str, frame: pd.DataFrame):
            written.append(write_csv(frame, out / name))

        csv_out("effect_sizes.csv", self.study_table())
        csv_out("pooled.csv", self.pooled_table())
        if self.by == "target":
            from neuromodmap.evidence._bytarget import pool_by_target

            ref = self.overall if self.overall is not None else next(iter(self.result.fits.values()))
            csv_out("by_target.csv", pool_by_target(self.effects, measure=self.measure, method=self.method,
                                                    test=self.test, level=ref.level))
        if not self.small_study.empty:
            csv_out("small_study_effects.csv", self.small_study)
        if self.metareg is not None:
            csv_out("metaregression_sites.csv", self.metareg.table())
            csv_out("metaregression.csv", self.metareg.coef_table().reset_index())
        for name, fig in self.figures.items():
            for fmt in ("png", "svg"):
                path = out / f"{name}.{fmt}"
                buf = io.BytesIO()
                fig.savefig(buf, format=fmt, dpi=200, bbox_inches="tight")
                with atomic_write(path, "wb") as fh:
                    fh.write(buf.getvalue())
                written.append(path)
        for name, text in (("report.html", self.html()), ("methods.md", self.methods_paragraph() + "\n"),
                           ("summary.txt", str(self.result) + "\n")):
            path = out / name
            with atomic_write(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            written.append(path)
        from neuromodmap.evidence._reportlet import meta_section

        written.append(meta_section(self, out).write(out))
        written += [out / "pooled_report.csv", out / "studies_report.csv"]
        return written


def _dependent_labels(effects: pd.DataFrame) -> pd.DataFrame:
    """Labels that tell a study's rows apart: outcome scale and time point, else the sheet row."""
    out = effects.copy()
    counts = out["study_id"].map(out["study_id"].value_counts())
    labels = []
    for row, n in zip(out.itertuples(), counts, strict=True):
        if n == 1:
            labels.append(row.study)
            continue
        bits = [str(row.outcome_measure) if row.outcome_measure == row.outcome_measure and row.outcome_measure
                else None,
                f"week {row.time_point_weeks:g}" if row.time_point_weeks == row.time_point_weeks
                and row.time_point_weeks is not None else None]
        detail = ", ".join(b for b in bits if b) or f"row {row.row}"
        labels.append(f"{row.study}: {detail}")
    # two rows of a study with the same scale and time point (e.g. two active arms): add the sheet row
    seen = pd.Series(labels).duplicated(keep=False).to_numpy()
    out["study"] = [f"{lab} (row {r})" if dup and not lab.endswith(f"row {r}") else lab
                    for lab, dup, r in zip(labels, seen, out["row"], strict=True)]
    return out


def _pool_multilevel(effects, by, mv_method, mv_test, method, test, level, measure, notes, cluster_robust=False):
    """Three-level fits: overall and, per subgroup, rma_mv where a study repeats, else rma.

    ``cluster_robust`` replaces the three-level fits' model-based inference by metafor's
    ``robust(fit, cluster = study)`` (CR1, t tests with df = studies - 1).
    """
    def fit(frame):
        ni = frame["ni"].to_numpy(float)
        if frame["study_id"].duplicated().any() and frame["study_id"].nunique() >= 2:
            res = rma_mv(frame["yi"].to_numpy(), frame["vi"].to_numpy(), study=list(frame["study_id"]),
                         method=mv_method, test=mv_test, level=level, slab=list(frame["study"]),
                         measure=measure, ni=ni)
            return robust(res) if cluster_robust else res
        return rma(frame["yi"].to_numpy(), frame["vi"].to_numpy(), method=method, test=test, level=level,
                   slab=list(frame["study"]), measure=measure, ni=ni)

    overall = fit(effects)
    if by is None:
        return overall
    fits, skipped, unpooled = {}, {}, {}
    for g, frame in effects.groupby(by, sort=False):
        try:
            fits[str(g)] = fit(frame)
        except MetaAnalysisError as exc:
            skipped[str(g)] = str(exc)
            unpooled[str(g)] = (list(frame["study"]), frame["yi"].to_numpy(), frame["vi"].to_numpy())
            notes.append(f"subgroup {g}: not pooled separately ({exc})")
    if len(fits) >= 2:
        est = np.array([f.estimate for f in fits.values()])
        w = 1.0 / np.array([float(np.atleast_1d(f.se)[0]) ** 2 for f in fits.values()])
        pooled = float(w @ est / w.sum())
        q_between = float(w @ (est - pooled) ** 2)
        df = len(fits) - 1
        q_p = float(chi2.sf(q_between, df))
    else:
        q_between, df, q_p = float("nan"), 0, float("nan")
    return SubgroupResult(fits=fits, overall=overall, q_between=q_between, q_between_df=df, q_between_p=q_p,
                          skipped=skipped, unpooled=unpooled)


def _favours(effects: pd.DataFrame, measure: str) -> tuple[str, str] | None:
    """'Favours ...' labels (left, right of the null) from the sheet's arms, or None for single-arm measures.

    Every outcome scale of the sheet is scored so lower is better, so for SMD/MD a negative
    difference (active minus control) favours the active arm; for responder/remitter counts
    (RR, OR, RD) a ratio above 1 does.
    """
    if measure not in ("SMD", "MD", "RR", "OR", "RD"):
        return None
    modalities = {m for m in effects["modality"] if m == m and m}
    active = f"{next(iter(modalities))}" if len(modalities) == 1 else "active"
    shams = {s for s in effects["sham_type"] if s == s and s}
    control = "sham" if shams and shams <= _SHAM_CODES else "control"
    if active != "active":
        active = active.upper()
    left, right = f"Favours {active}", f"Favours {control}"
    return (left, right) if measure in ("SMD", "MD") else (right, left)


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return "NA"
        if 0 < abs(value) < 1e-4:
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return str(value)


def run_meta(sheet: str | Path, measure: str = "SMD", by: str | None = "modality", method: str = "REML",
             test: str = "z", level: float = 95, outcome: str = "responders", sheet_name: str | None = None,
             skip_invalid: bool = False, figures: bool = True, moderator: str | None = None,
             seed=None, connectome=None, radius: float = 10.0, data_dir=None,
             cluster_robust: bool = False) -> MetaReport:
    """Validate an extraction sheet, compute effect sizes, pool them (per subgroup) and build the report.

    Several rows with one ``study_id`` are pooled with the three-level model (:func:`rma_mv`);
    ``cluster_robust=True`` gives those fits cluster-robust (CR1, by study) tests and CIs.

    ``moderator="connectivity"`` adds a meta-regression of the effects on each study site's
    connectivity to ``seed`` (default: the Fox 2012 sgACC) on ``connectome``
    (see :func:`neuromodmap.evidence.connectivity_metaregression`).

    Raises :class:`SheetValidationError` listing every bad cell (unless ``skip_invalid``,
    which drops bad rows and lists them in the report notes).
    """
    path = Path(sheet)
    measure = measure.upper()
    # check the options before reading anything, so a typo is reported as such
    if measure not in MEASURES:
        raise MetaAnalysisError(f"unknown measure {measure!r}; choose one of {', '.join(SHEET_MEASURES)}")
    if measure not in SHEET_MEASURES:
        raise MetaAnalysisError(f"{measure} needs data the extraction sheet does not hold; "
                                f"use {', '.join(SHEET_MEASURES)} (or escalc() directly)")
    # metafor's estimator names, any case ("hsk" is HSk; "FE" is EE)
    method = {m.upper(): m for m in METHODS}.get(method.upper(), "EE" if method.upper() in ("FE", "CE") else method)
    if method not in METHODS:
        raise MetaAnalysisError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if test.lower() not in ("z", "knha"):
        raise MetaAnalysisError(f"unknown test {test!r}; choose 'z' or 'knha'")
    if by is not None and by not in GROUPABLE:
        raise MetaAnalysisError(f"cannot split by {by!r}; choose one of {', '.join(GROUPABLE)}")
    if moderator is not None and moderator not in MODERATORS:
        raise MetaAnalysisError(f"unknown moderator {moderator!r}; choose one of {', '.join(MODERATORS)}")
    rows, notes = read_sheet(path, sheet_name)
    if not rows:
        raise SheetError(f"{path}: the sheet has a header but no data rows")
    records: list[tuple[int, ExtractionRecord]] = []
    problems: list[CellProblem] = []
    for row in rows:
        good, bad = validate_rows([row])
        problems.extend(bad)
        if good:
            records.append((row["_row"], good[0]))
    effects, missing = effect_sizes(records, measure, outcome, by)
    problems.extend(missing)
    problems.extend(_unusable_effects(effects, records, measure))
    if problems and not skip_invalid:
        raise SheetValidationError(path, problems)
    notes += [f"skipped: {p}" for p in problems]
    notes += effects.attrs.get("notes", [])
    effects = effects[np.isfinite(effects["yi"]) & np.isfinite(effects["vi"])] if len(effects) else effects
    if len(effects) == 0:
        raise MetaAnalysisError(f"{path}: no study has the data needed for {measure}")
    if len(effects) == 1:
        raise MetaAnalysisError(f"{path}: only one study ({effects['study'].iloc[0]}) has the data needed "
                                f"for {measure}; at least 2 are needed to pool")
    scales = sorted({str(o) for o in effects["outcome_measure"] if o is not None and o == o})
    domains = sorted({OUTCOME_MEASURES[o][1] for o in scales if o in OUTCOME_MEASURES} - {"other"})
    if len(domains) > 1:
        notes.append(f"pain and depression outcomes pooled together ({', '.join(scales)}); "
                     "consider --by outcome_measure or separate sheets")
    split = by
    if by is not None and effects[by].nunique() == 1:
        # one subgroup is the overall model: no subgroup block, no test for subgroup differences
        # (the report keeps `by`, so --by target still writes by_target.csv)
        notes.append(f"every row has {by} = {effects[by].iloc[0]}: one model, no subgroups")
        split = None
    dup = effects["study_id"].value_counts()
    multilevel = bool((dup > 1).any())
    if multilevel:
        effects = _dependent_labels(effects)
        mv_method = method.upper() if method.upper() in ("REML", "ML") else "REML"
        mv_test = "t" if test.lower() == "knha" else "z"
        n_dep = int(dup[dup > 1].sum())
        notes.append(f"{(dup > 1).sum()} stud{'y' if (dup > 1).sum() == 1 else 'ies'} contribute{'s' if (dup > 1).sum() == 1 else ''} "
                     f"several rows ({n_dep} of {len(effects)} effects): pooled with a three-level model "
                     "(rma_mv, effects nested in studies)")
        if mv_method != method.upper():
            notes.append(f"the three-level model is fitted by REML ({method.upper()} has no multilevel form)")
        if by == "target" or moderator is not None:
            notes.append("by_target.csv and the connectivity meta-regression pool with the univariate model "
                         "(dependent rows treated as independent there)")
        if mv_test != test.lower():
            notes.append("--test knha: the three-level model uses t tests with df = k - p (metafor's rma.mv test='t')")
    if cluster_robust and not multilevel:
        notes.append("--robust: every study contributes one row, so there is no three-level model to make robust")
    ni = effects["ni"].to_numpy(float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetaAnalysisWarning)
        if multilevel:
            result = _pool_multilevel(effects, split, mv_method, mv_test, method, test, level, measure, notes,
                                      cluster_robust=cluster_robust)
        elif split is None:
            result = rma(effects["yi"].to_numpy(), effects["vi"].to_numpy(), method=method, test=test,
                         level=level, slab=list(effects["study"]), measure=measure, ni=ni)
        else:
            result = rma(effects["yi"].to_numpy(), effects["vi"].to_numpy(), method=method, test=test,
                         level=level, slab=list(effects["study"]), measure=measure, ni=ni,
                         subgroup=list(effects[split]))
            for g, why in result.skipped.items():
                notes.append(f"subgroup {g}: not pooled separately ({why})")
    notes += [str(w.message) for w in caught]
    overall = result.overall if isinstance(result, SubgroupResult) else result
    small = pd.DataFrame()
    if overall is not None and overall.k >= 3 and not multilevel:
        rows_ss = []
        for model in ("rma", "lm"):
            rt = regtest(overall, model=model)
            rows_ss.append({"analysis": f"Egger regression ({model})", "statistic": rt.stat,
                            "df": rt.df, "pval": rt.pval, "estimate": rt.est, "ci_lb": rt.ci_lb,
                            "ci_ub": rt.ci_ub, "k0": None, "side": None})
        tf = trimfill(overall)
        rows_ss.append({"analysis": "Trim-and-fill (L0)", "statistic": None, "df": None, "pval": tf.fit.pval,
                        "estimate": tf.fit.estimate, "ci_lb": tf.fit.ci_lb, "ci_ub": tf.fit.ci_ub,
                        "k0": tf.k0, "side": tf.side})
        small = pd.DataFrame(rows_ss)
        if overall.k < 10:
            notes.append(f"only {overall.k} studies: Egger's test and trim-and-fill have little power below 10")
    prov = Provenance(source=str(path), as_of=dt.date.fromtimestamp(path.stat().st_mtime),
                      citation=CITATIONS["metafor"],
                      extra={"measure": measure, "method": method, "test": test})
    result.provenance = prov
    for fit in getattr(result, "fits", {}).values():
        fit.provenance = prov
    if overall is not None:
        overall.provenance = prov
    report = MetaReport(measure=measure, method=method, test=test, by=by, effects=effects,
                        result=result, small_study=small, notes=notes, provenance=prov, multilevel=multilevel)
    if moderator == "connectivity":
        report.metareg = connectivity_metaregression(effects, seed, connectome=connectome, radius=radius,
                                                     method=method, test=test, level=level, data_dir=data_dir,
                                                     figure=figures)
        notes += report.metareg.notes
        report.figures.update(report.metareg.figures)
    if figures:
        from neuromodmap.evidence._plots import forest, funnel

        report.figures["forest"] = forest(result, favours=_favours(effects, measure),
                                          groups=list(effects["study_id"]) if multilevel else None)
        if overall is not None and overall.k >= 3:
            report.figures["funnel"] = funnel(overall if multilevel else trimfill(overall))
    return report
