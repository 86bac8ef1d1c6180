"""Speed of the REML random-effects fit (neuromodmap.evidence.rma).

Prints the median wall time of ``rma(yi, vi, method="REML")`` for k = 10, 100 and 1,000
studies (simulated log risk ratios with tau² = 0.3 and sampling variances like dat.bcg's),
and the time for 10,000 bootstrap re-fits at k = 100 (studies resampled with replacement),
once as 10,000 calls of ``rma`` and once with :func:`neuromodmap.evidence.bootstrap`, which
runs the same Fisher scoring on all replicates at once (each replicate equals its ``rma``).
Goal: REML under 5 ms at k = 100.

Also times the three-level model ``rma_mv(yi, vi, study=...)`` (REML and ML) and ``robust()``
(CR1) for k = 100 effects in 20 studies and k = 1,000 effects in 100 studies (simulated with
sigma² = 0.1 between and 0.05 within studies); ``--mv-only`` runs just that part.

    .venv/bin/python benchmarks/meta_speed.py [--repeats 50] [--boot 10000] [--mv-only]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

from neuromodmap.evidence import bootstrap, rma, rma_mv, robust


def simulate(k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    vi = rng.uniform(0.004, 0.5, size=k)
    yi = rng.normal(-0.7, np.sqrt(0.3 + vi))
    return yi, vi


def median_time(func, repeats: int) -> tuple[float, float]:
    func()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def simulate_nested(k: int, studies: int, rng: np.random.Generator):
    study = np.sort(rng.integers(0, studies, size=k))
    study[:studies] = np.arange(studies)      # every study has at least one effect
    study = np.sort(study)
    vi = rng.uniform(0.01, 0.2, size=k)
    yi = 0.4 + rng.normal(0, np.sqrt(0.1), studies)[study] + rng.normal(0, np.sqrt(0.05 + vi))
    return yi, vi, study


def time_rma_mv(repeats: int) -> None:
    rng = np.random.default_rng(2011)
    print(f"Three-level model (rma_mv), median of {repeats} repeats")
    print(f"{'k':>6} {'studies':>8} {'REML ms':>9} {'ML ms':>9} {'robust CR1 ms':>14} {'sigma2 (REML)':>18}")
    for k, studies in ((100, 20), (1000, 100)):
        yi, vi, study = simulate_nested(k, studies, rng)
        reml, _ = median_time(lambda yi=yi, vi=vi, study=study: rma_mv(yi, vi, study=study), repeats)
        ml, _ = median_time(lambda yi=yi, vi=vi, study=study: rma_mv(yi, vi, study=study, method="ML"), repeats)
        fit = rma_mv(yi, vi, study=study)
        rob, _ = median_time(lambda fit=fit: robust(fit), repeats)
        s2 = ", ".join(f"{v:.3f}" for v in fit.sigma2)
        print(f"{k:>6} {studies:>8} {reml * 1e3:>9.2f} {ml * 1e3:>9.2f} {rob * 1e3:>14.2f} {s2:>18}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--boot", type=int, default=10_000)
    parser.add_argument("--mv-only", action="store_true", help="time only rma_mv and robust")
    args = parser.parse_args()
    time_rma_mv(args.repeats)
    if args.mv_only:
        return
    print()
    rng = np.random.default_rng(2010)
    print(f"REML fit (rma, method='REML'), median of {args.repeats} repeats")
    print(f"{'k':>6} {'median ms':>10} {'min ms':>8} {'iterations':>10}")
    for k in (10, 100, 1000):
        yi, vi = simulate(k, rng)
        med, low = median_time(lambda yi=yi, vi=vi: rma(yi, vi), args.repeats)
        print(f"{k:>6} {med * 1e3:>10.3f} {low * 1e3:>8.3f} {rma(yi, vi).iterations:>10}")

    yi, vi = simulate(100, rng)
    idx = rng.integers(0, 100, size=(args.boot, 100))
    t0 = time.perf_counter()
    estimates = np.empty(args.boot)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in range(args.boot):
            estimates[b] = rma(yi[idx[b]], vi[idx[b]]).estimate
    elapsed = time.perf_counter() - t0
    lo, hi = np.percentile(estimates, [2.5, 97.5])
    print(f"\n{args.boot:,} bootstrap REML re-fits at k = 100, one rma() call each: {elapsed:.2f} s "
          f"({elapsed / args.boot * 1e3:.3f} ms per fit); percentile 95% CI {lo:.3f} to {hi:.3f}")
    fit = rma(yi, vi)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        boot = bootstrap(fit, n_boot=args.boot, seed=1)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    lo, hi = boot.ci
    print(f"{args.boot:,} bootstrap REML re-fits at k = 100, vectorised bootstrap(): median of 5 runs {med:.3f} s "
          f"({med / args.boot * 1e6:.1f} us per fit; {elapsed / med:.0f}x faster); "
          f"percentile 95% CI {lo:.3f} to {hi:.3f}")


if __name__ == "__main__":
    main()
