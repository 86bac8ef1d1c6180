"""Calibration of the null models of ``connectome map``: are their p-values uniform when the
"targets" are random sites?

Each calibration set is a random site set with the structure of the built-in pain targets on
the chosen connectome: the same depth classes (cortex, subcortex, brainstem), radii,
superficial/deep labels and bilateral mirror pairs. It goes through ``map_targets`` exactly as
real targets do, with every null model, and the p-values are collected: the overlap r and Dice
(one per null), the "between superficial and deep" similarity and the hubs (random sites). Under
this null hypothesis a calibrated test rejects at its nominal rate. Printed (and written as a
markdown table): rejection rates at alpha 0.05 and 0.01 with their binomial 95 % intervals, the
Kolmogorov-Smirnov distance of the p-values from the uniform distribution, and, for the hubs, the
share of sets with at least one region flagged (q < 0.05) and the mean share of regions flagged.
A figure (QQ plot and histogram per null) goes to ``docs/img``.

Random sites are, by construction, the null the random-sites test draws from, so its rejection
rate checks the implementation (exchangeable draws give uniform p-values); the variogram and
depth-relabel nulls model other things, and this shows how they behave when the targets are
random sites.

Usage::

    NEUROMODMAP_DATA=/path/to/shared/data python benchmarks/connectome_null_calibration.py \\
        --connectome enigma-schaefer400 --connectome hansen-brainstem --sets 400 --n-null 200 \\
        --csv /tmp/calibration.csv --figure docs/img/connectome_null_calibration.png
    # re-plot and re-tabulate without recomputing:
    python benchmarks/connectome_null_calibration.py --from-csv /tmp/calibration.csv --figure ...
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from neuromodmap.connectome import load_connectome, map_targets, target_catalogue
from neuromodmap.connectome._nulls import SiteTemplate, depth_class, draw_sites

ALPHAS = (0.05, 0.01)


def _template(connectome, catalogue: pd.DataFrame) -> tuple[SiteTemplate, pd.DataFrame]:
    pain = catalogue[catalogue.indication.isin(["pain", "both"])].reset_index(drop=True)
    rows, classes = [], []
    for r in pain.itertuples():
        try:
            seed = connectome.seed((r.x, r.y, r.z), r.radius)
        except Exception:  # noqa: BLE001 - a target this connectome cannot map is left out, as map_targets does
            continue
        rows.append(r.Index)
        classes.append(depth_class(connectome, seed))
    pain = pain.loc[rows].reset_index(drop=True)
    template = SiteTemplate.from_targets(pain[["x", "y", "z"]].to_numpy(float), classes, pain.radius.to_numpy(float),
                                         pain.depth.to_numpy())
    return template, pain


def run(name: str, n_sets: int, n_null: int, n_permutations: int, seed: int, nulls: str = "all") -> pd.DataFrame:
    connectome = load_connectome(name)
    template, pain = _template(connectome, target_catalogue())
    print(f"{name}: template of {len(pain)} pain targets: {template.class_counts()}, {template.n_pairs} pairs, "
          f"{int((pain.depth == 'superficial').sum())} superficial / {int((pain.depth == 'deep').sum())} deep")
    rows = []
    start = time.perf_counter()
    for s in range(n_sets):
        rng = np.random.default_rng([seed, s])
        coords, _ = draw_sites(connectome, template, rng, 5.0)
        targets = pd.DataFrame({"id": [f"site{i}" for i in range(len(coords))], "x": coords[:, 0],
                                "y": coords[:, 1], "z": coords[:, 2], "radius": template.radii,
                                "depth": pain.depth.to_numpy(), "indication": "pain",
                                "coordinate_source": "random"})
        result = map_targets(targets, connectome, null=nulls, n_null=n_null, n_permutations=n_permutations,
                             random_state=10_000 + s)
        row = {"connectome": name, "set": s}
        for r in result.overlap_table.itertuples():
            row[f"{r.null_model}:r"] = r.p_null
            row[f"{r.null_model}:dice"] = r.p_null_dice
        sim = result.similarity_null.set_index("comparison")
        row["random-sites:similarity_between"] = sim.loc["between superficial and deep", "p_null"]
        hubs = result.hubs
        row["hubs_flagged"] = int(hubs.hub.sum())
        row["hubs_share"] = float(hubs.hub.sum() / connectome.n_regions)
        # per-region p (uncorrected); regions no target reaches have p = 1 and are not in hubs.csv
        row["hubs_p05_share"] = float((hubs.p_null <= 0.05).sum() / connectome.n_regions)
        row["r"] = result.overlap["r"]
        rows.append(row)
        if (s + 1) % 50 == 0 or s + 1 == n_sets:
            el = time.perf_counter() - start
            print(f"  {s + 1}/{n_sets} sets, {el:.0f} s ({el / (s + 1):.2f} s per set), "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    return pd.DataFrame(rows)


def _interval(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return ci.low, ci.high


def table(results: pd.DataFrame) -> str:
    lines = ["| connectome | null | statistic | sets | reject at 0.05 (95 % CI) | reject at 0.01 (95 % CI) | KS D "
             "(p) | median p |", "|---|---|---|---|---|---|---|---|"]
    tests = [c for c in results.columns if ":" in c]
    for name, block in results.groupby("connectome", sort=False):
        for col in tests:
            p = block[col].dropna().to_numpy()
            if not p.size:
                continue
            null, statistic = col.split(":")
            cells = []
            for alpha in ALPHAS:
                k = int((p <= alpha).sum())
                lo, hi = _interval(k, p.size)
                cells.append(f"{k / p.size:.3f} ({lo:.3f}-{hi:.3f})")
            ks = stats.kstest(p, "uniform")
            lines.append(f"| {name} | {null} | {statistic.replace('_', ' ')} | {p.size} | {cells[0]} | {cells[1]} | "
                         f"{ks.statistic:.3f} ({ks.pvalue:.2g}) | {np.median(p):.3f} |")
    lines += ["", "| connectome | sets | sets with at least one hub (q < 0.05) (95 % CI) | mean share of regions "
              "flagged | mean share of regions with uncorrected p <= 0.05 |", "|---|---|---|---|---|"]
    for name, block in results.groupby("connectome", sort=False):
        flagged = block.hubs_flagged.to_numpy()
        k = int((flagged > 0).sum())
        lo, hi = _interval(k, flagged.size)
        p05 = f"{block.hubs_p05_share.mean():.4f}" if "hubs_p05_share" in block else ""
        lines.append(f"| {name} | {flagged.size} | {k / flagged.size:.3f} ({lo:.3f}-{hi:.3f}) | "
                     f"{block.hubs_share.mean():.4f} | {p05} |")
    return "\n".join(lines)


def figure(results: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(results.connectome))
    tests = [c for c in results.columns if ":" in c]
    colours = {"random-sites": "#1b9e77", "variogram": "#d95f02", "depth-relabel": "#7570b3"}
    fig = Figure(figsize=(5.2 * len(names), 8.2))
    for j, name in enumerate(names):
        block = results[results.connectome == name]
        ax_qq = fig.add_subplot(2, len(names), j + 1)
        ax_h = fig.add_subplot(2, len(names), len(names) + j + 1)
        for col in tests:
            p = np.sort(block[col].dropna().to_numpy())
            if not p.size:
                continue
            null, statistic = col.split(":")
            style = "-" if statistic == "r" else ("--" if statistic == "dice" else ":")
            expected = (np.arange(1, p.size + 1) - 0.5) / p.size
            ax_qq.plot(expected, p, style, color=colours[null], lw=1.4, label=f"{null} ({statistic.replace('_', ' ')})")
            if statistic == "r":
                ax_h.hist(p, bins=20, range=(0, 1), histtype="step", lw=1.6, color=colours[null], label=null)
        ax_qq.plot([0, 1], [0, 1], color="0.5", lw=0.8)
        ax_qq.set(xlabel="uniform quantile", ylabel="p-value", xlim=(0, 1), ylim=(0, 1),
                  title=f"{name}: QQ plot ({len(block)} random target sets)")
        ax_qq.legend(fontsize=7, loc="lower right")
        ax_h.axhline(len(block) / 20, color="0.5", lw=0.8)
        ax_h.set(xlabel="p-value of the overlap r", ylabel="random target sets", title="histogram (20 bins)")
        ax_h.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connectome", action="append", help="repeatable; default enigma-schaefer400")
    ap.add_argument("--sets", type=int, default=400, help="random target sets per connectome")
    ap.add_argument("--n-null", type=int, default=200, help="draws per null for each set")
    ap.add_argument("--permutations", type=int, default=1000, help="relabellings for depth-relabel")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--null", default="all", help="null models to run (as --null of connectome map)")
    ap.add_argument("--csv", type=Path, help="write the per-set p-values here")
    ap.add_argument("--from-csv", type=Path, help="tabulate and plot an earlier run instead of computing")
    ap.add_argument("--figure", type=Path, default=Path("docs/img/connectome_null_calibration.png"))
    ap.add_argument("--markdown", type=Path, help="write the table here too")
    args = ap.parse_args()
    if args.from_csv:
        results = pd.read_csv(args.from_csv)
    else:
        print(f"load average at start: {os.getloadavg()}")
        results = pd.concat([run(name, args.sets, args.n_null, args.permutations, args.seed, args.null)
                             for name in (args.connectome or ["enigma-schaefer400"])], ignore_index=True)
        if args.csv:
            results.to_csv(args.csv, index=False)
        print(f"load average at end: {os.getloadavg()}")
    text = table(results)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    figure(results, args.figure)
    print(f"figure written to {args.figure}")


if __name__ == "__main__":
    main()
