"""The shipped real data set (Gaynes 2011, AHRQ CER No. 33, rTMS vs sham response) and what it reproduces.

Published numbers are the report's (Figure 13 and Figure 10 text, PubMed Health PMH0016653; quoted in
``src/neuromodmap/evidence/data/SOURCES.md``). metafor numbers come from
``tests/evidence/reference/gaynes2011_metafor.json``, written by ``scripts/metafor_reference_evidence.R``
(metafor 3.8-1, R 4.2.2) from the same CSV files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuromodmap.evidence import datasets, rma, run_meta

REF = json.loads((Path(__file__).parent / "reference" / "gaynes2011_metafor.json").read_text())


def _close(a, b, tol=1e-6):
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    assert np.allclose(a, b, atol=tol, rtol=0), (a.tolist(), b.tolist())


# --- the transcription --------------------------------------------------------------------------

_PATTERN = re.compile(r"([A-Z][A-Za-z'\-]+),? et al\.,? ?(\d{4}) reports a relative risk for response of "
                      r"([\d.]+) \(95%CI, ([\d.]+) to ([\d.]+)\)")


def _quoted(sources: str) -> list[tuple[str, int, float, float, float]]:
    blocks = re.findall(r"```text\n(.*?)\n```", sources, flags=re.S)
    assert len(blocks) == 2
    return [(m[0], int(m[1]), float(m[2]), float(m[3]), float(m[4])) for b in blocks for m in _PATTERN.findall(b)]


def test_every_number_matches_the_quoted_source_text():
    quoted = _quoted(datasets.sources_text())
    assert len(quoted) == 15  # 12 studies of Figure 13 + 3 MDD/bipolar-mix studies of Figure 10
    by_key = {(name.replace("-", ""), year): (rr, lb, ub) for name, year, rr, lb, ub in quoted}
    for name in datasets.DATASETS:
        sheet = datasets.load_dataset(name)
        for row in sheet.itertuples():
            author = row.citation.split(" et al")[0].split(",")[0].replace("'", "").replace("-", "")
            key = next(k for k in by_key if k[1] == row.year and k[0].replace("'", "") == author)
            assert (row.effect, row.effect_ci_lb, row.effect_ci_ub) == by_key[key], row.study_id


def test_dataset_carries_provenance_and_path():
    sheet = datasets.load_dataset("gaynes2011_fig13")
    assert len(sheet) == 12 and set(sheet["subgroup"]) == {"Tier 1", "Tier 2"}
    prov = sheet.attrs["provenance"]
    assert "Comparative Effectiveness Review No. 33" in prov.citation and "PMH0016653" in prov.source
    assert datasets.dataset_path("gaynes2011_fig13").is_file()
    # targets only where a trial abstract names the site (SOURCES.md, datasets.TARGET_SOURCES)
    assert dict(sheet.dropna(subset=["target"])[["study_id", "target"]].values) == {
        "Kauffmann2004": "dlpfc_right", "OReardon2007": "dlpfc_left", "GarciaToro2001": "dlpfc_left",
        "Holtzheimer2004": "dlpfc_left"}
    with pytest.raises(KeyError, match="unknown dataset"):
        datasets.load_dataset("nope")


# --- the published pooled estimates ------------------------------------------------------------

def test_figure13_published_estimates_reproduced_to_the_printed_precision():
    # Gaynes 2011 Figure 13: Tier 1 RR 2.82 (1.57 to 5.09); Tier 2 1.87 (1.23 to 2.84); overall 2.18 (1.47 to 3.22)
    table = datasets.reproduce("gaynes2011_fig13").set_index("analysis")
    for label in ("Tier 1", "Tier 2", "overall"):
        row = table.loc[label]
        assert (round(row.rr, 2), round(row.ci_lb, 2), round(row.ci_ub, 2)) == datasets.PUBLISHED[
            "gaynes2011_fig13"][label], label
    assert table.loc["Tier 1", "i2"] == 0 and table.loc["Tier 2", "i2"] < 0.01  # report: I2 = 0% in both


def test_figure10_published_estimates_within_the_rounding_of_the_printed_inputs():
    # Figure 10 prints 5.38 (1.88 to 15.46) and 3.34 (1.92 to 5.82); from the 2-decimal inputs we get
    # 5.40 (1.88, 15.52) and 3.35 (1.91, 5.85). Every input lies within +-0.005 of its true value, so the
    # published values must lie inside the range of estimates over inputs so perturbed.
    got = datasets.reproduce("gaynes2011_fig10").set_index("analysis")
    sheet = datasets.load_dataset("gaynes2011_fig10")
    e, lb, ub = (sheet[c].to_numpy(float) for c in ("effect", "effect_ci_lb", "effect_ci_ub"))
    g = sheet["subgroup"].to_numpy()
    rng = np.random.default_rng(1)
    draws = []
    for _ in range(1000):
        E, L, U = (a + rng.uniform(-0.005, 0.005, a.size) for a in (e, lb, ub))
        y, v = np.log(E), ((np.log(U) - np.log(L)) / (2 * 1.959963984540054)) ** 2
        fits = [rma(y[g == k], v[g == k], method="REML") for k in ("MDD only", "MDD/bipolar mix")]
        o = rma(np.array([f.estimate for f in fits]), np.array([f.se**2 for f in fits]), method="DL")
        draws.append(np.exp([fits[1].estimate, fits[1].ci_lb, fits[1].ci_ub, o.estimate, o.ci_lb, o.ci_ub]))
    lo, hi = np.min(draws, axis=0), np.max(draws, axis=0)
    published = [*datasets.PUBLISHED["gaynes2011_fig10"]["MDD/bipolar mix"], *datasets.PUBLISHED["gaynes2011_fig10"]["overall"]]
    assert np.all((lo - 0.005 <= published) & (published <= hi + 0.005)), (lo, published, hi)
    assert abs(got.loc["overall", "rr"] - 3.34) < 0.01


# --- metafor ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["fig13", "fig10"])
def test_models_match_metafor(name):
    ref = REF[name]
    sheet = datasets.load_dataset(f"gaynes2011_{name}")
    report = run_meta(datasets.dataset_path(f"gaynes2011_{name}"), measure="RR", by="subgroup", method="REML",
                      figures=False)
    _close(report.effects["yi"], ref["yi"], 1e-12)
    _close(report.effects["vi"], ref["vi"], 1e-12)
    for group, sub in ref["subgroups"].items():
        fit = report.result.fits[group]
        _close([fit.estimate, fit.se, fit.ci_lb, fit.ci_ub, fit.q], [sub["beta"], sub["se"], sub["ci_lb"],
                                                                   sub["ci_ub"], sub["q"]], 1e-4)
        assert abs(fit.tau2 - sub["tau2"]) < 1e-4
    overall = report.result.overall
    _close([overall.estimate, overall.se, overall.tau2, overall.q],
           [ref["all_reml"]["beta"], ref["all_reml"]["se"], ref["all_reml"]["tau2"], ref["all_reml"]["q"]], 1e-4)
    two = datasets.reproduce(f"gaynes2011_{name}").attrs["fits"]["overall"]
    _close([two.estimate, two.se, two.tau2], [ref["two_stage_dl"]["beta"], ref["two_stage_dl"]["se"],
                                              ref["two_stage_dl"]["tau2"]], 1e-6)
    y, v = np.array(ref["yi"]), np.array(ref["vi"])
    for key, kwargs, mods in (("mods_year_reml", {}, sheet[["year"]]),
                              ("mods_year_reml_knha", {"test": "knha"}, sheet[["year"]]),
                              ("mods_subgroup_dl", {"method": "DL"},
                               pd.get_dummies(sheet["subgroup"], drop_first=True).astype(float))):
        fit = rma(y, v, mods=mods, **{"method": "REML", **kwargs})
        r = ref[key]
        _close(fit.beta, r["beta"], 1e-4)
        _close(fit.ses, r["se"], 1e-4)
        _close(fit.pvals, r["pval"], 1e-4)
        _close([fit.qm, fit.qm_p, fit.q], [r["qm"], r["qm_p"], r["q"]], 1e-4)
        assert abs(fit.tau2 - r["tau2"]) < 1e-4
