"""Speed and memory of the connectome stage. Prints three figures (medians over repeats):

1. parcel mode: the whole built-in catalogue against every region of enigma-schaefer400
   (seeds → profiles, and the full ``map_targets`` analysis without figures); goal < 1 s;
2. voxel mode: seeds × voxels × TRs per second of ``voxel_seed_maps`` on in-memory float32
   series (file reading excluded; all per-subject work included: centring and norms, seed
   series, r, Fisher z, the running sums, and the group maps at the end), as a fraction of the
   float32 GEMM peak on all cores (a 2048³ product, BLAS on as many threads as the engine uses),
   measured just before each timed repeat; goal ≥ 50 %. Also printed: the CPU share the process
   got (other processes on a shared machine slow both figures) and a per-step breakdown in CPU
   seconds, which load affects less than wall time;
3. peak memory: traced allocations during the voxel run against one subject's series, and
   the process's maximum resident set size.

Usage::

    NEUROMODMAP_DATA=/path/to/shared/data python benchmarks/connectome_speed.py \
        [--voxels 60000] [--trs 1200] [--seeds 256] [--subjects 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from neuromodmap.connectome import (
    VoxelConnectome,
    load_connectome,
    map_targets,
    target_catalogue,
    voxel_seed_maps,
)
from neuromodmap.provenance import Provenance


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _InMemory(VoxelConnectome):
    """Random float32 series held in memory (file reading excluded from the timing).

    The engine centres the series in place; re-centring centred data costs the same, so the
    arrays are handed out without a copy.
    """

    def __init__(self, n_voxels: int, n_trs: int, n_subjects: int, seed: int = 0):
        side = int(np.ceil(n_voxels ** (1 / 3)))
        ijk = np.argwhere(np.ones((side, side, side), dtype=bool))[:n_voxels]
        rng = np.random.default_rng(seed)
        self._data = {f"sub{i}": rng.standard_normal((n_trs, n_voxels), dtype=np.float32) for i in range(n_subjects)}
        super().__init__(name="in-memory", shape=(side, side, side), affine=np.diag([2.0, 2.0, 2.0, 1.0]), ijk=ijk,
                         subjects=list(self._data), provenance=Provenance(source="random"))

    def runs(self, subject):
        return [self._data[subject]]


def gemm_peak(n: int = 2048, repeats: int = 3) -> float:
    a = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(2).standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up
    return 2 * n**3 / _median_time(lambda: a @ b, repeats)


def _breakdown(source: VoxelConnectome, seed_coords: np.ndarray, threads: int, repeats: int) -> None:
    """Where the time goes, in CPU seconds (all threads), medians over ``repeats``.

    Per subject: centring + norms + seed series, the GEMMs alone (same blocks and threads as the
    engine), and the element-wise rest of the block loop (1/norm, Fisher z, the four float64
    sums); per call: the group maps at the end. CPU seconds are inflated less than wall time by
    other processes; the GEMM line gives the engine's GEMM rate in GFLOP per CPU second.
    """
    from neuromodmap.connectome import _voxel as engine

    seed_sets = [source.sphere(c, 0) for c in seed_coords]
    n_seeds, (n_trs, n_voxels) = len(seed_sets), source.runs(source.subjects[0])[0].shape
    acc = engine._Accumulator(n_seeds, n_voxels)
    steps: dict[str, list[float]] = {"centre": [], "gemm": [], "rest": [], "finish": []}
    with engine._threads(threads) as pmap:
        import threading

        local = threading.local()

        def work():
            if not hasattr(local, "work"):
                local.work = engine._Work(n_seeds)
            return local.work

        def gemm(b):
            v0, v1 = acc.blocks[b]
            np.matmul(run.x[:, v0:v1].T, run.seeds.T, out=work().views(v1 - v0)[0])  # as in _block_rz

        def block(b):
            v0, v1 = acc.blocks[b]
            acc.add_block(b, *engine._block_rz([run], run.seed_bad, run.bad, v0, v1, work()))

        for rep in range(repeats + 1):
            x = source.runs(source.subjects[0])[0]
            start = time.process_time()
            run = engine._prepare_run(x, seed_sets, pmap, threads)
            t_centre = time.process_time() - start
            start = time.process_time()
            list(pmap(gemm, range(len(acc.blocks))))
            t_gemm = time.process_time() - start
            start = time.process_time()
            list(pmap(block, range(len(acc.blocks))))
            t_all = time.process_time() - start
            if rep:  # the first round touches fresh memory
                steps["centre"].append(t_centre)
                steps["gemm"].append(t_gemm)
                steps["rest"].append(t_all - t_gemm)
        for _ in range(repeats):
            acc.add_subject(run.seed_bad, run.bad, ("s", 1, 0))
            start = time.process_time()
            acc.finish(pmap)
            steps["finish"].append(time.process_time() - start)
            acc = engine._Accumulator(n_seeds, n_voxels)
            list(pmap(block, range(len(acc.blocks))))
    med = {k: statistics.median(v) for k, v in steps.items()}
    flops = 2 * n_seeds * n_voxels * n_trs
    per_subject = med["centre"] + med["gemm"] + med["rest"]
    print(f"    CPU seconds per subject: centring, norms and seed series {med['centre']:.3f}; GEMMs "
          f"{med['gemm']:.3f} ({flops / med['gemm'] / 1e9:.0f} GFLOP per CPU-s); 1/norm, Fisher z and the four "
          f"sums {med['rest']:.3f}; total {per_subject:.3f} (GEMM share {med['gemm'] / per_subject:.0%}). "
          f"Per call: group maps at the end {med['finish']:.3f} (measured alone; in a run the last subject's "
          "block loop computes them while each block's sums are in cache)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voxels", type=int, default=60000)
    parser.add_argument("--trs", type=int, default=1200)
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None,
                        help="engine threads over voxel blocks (default: all cores; BLAS runs 1 thread in each)")
    args = parser.parse_args()
    print(f"cpu cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; numpy {np.__version__}")

    # 1. parcel mode ---------------------------------------------------------------------------
    start = time.perf_counter()
    connectome = load_connectome("enigma-schaefer400")
    catalogue = target_catalogue()
    print(f"cold load of enigma-schaefer400 + catalogue: {time.perf_counter() - start:.2f} s")
    coords = catalogue[["x", "y", "z"]].to_numpy(float)
    radii = catalogue["radius"].to_numpy(float)

    def seeds_and_profiles():
        kept = []
        for c, r in zip(coords, radii, strict=True):
            try:
                kept.append(connectome.seed(c, r).weights)
            except Exception:  # brainstem rows are skipped on this connectome
                continue
        return connectome.profiles(np.vstack(kept))

    profiles = seeds_and_profiles()
    t_profiles = _median_time(seeds_and_profiles, args.repeats * 3)
    t_full = _median_time(lambda: map_targets(catalogue, connectome, n_permutations=5000), args.repeats)
    print(f"[1] parcel mode: {len(catalogue)} catalogue targets ({profiles.shape[0]} mapped) x "
          f"{connectome.n_regions} regions: seeds+profiles {t_profiles * 1000:.1f} ms; full map_targets "
          f"(groups, 5000-permutation overlap, hubs, similarity; no figures) {t_full:.3f} s "
          f"[goal < 1 s: {'met' if t_full < 1 else 'NOT met'}]")

    # 2. voxel mode ----------------------------------------------------------------------------
    source = _InMemory(args.voxels, args.trs, args.subjects)
    rng = np.random.default_rng(3)
    xyz = source.xyz()
    seed_coords = xyz[rng.choice(len(xyz), args.seeds, replace=False)]
    threads = args.workers or os.cpu_count() or 1

    def run():
        return voxel_seed_maps(source, seed_coords, radius=0, n_workers=args.workers)

    run()  # warm-up (thread pool, caches)
    work = args.seeds * args.voxels * args.trs * args.subjects
    times, peaks, cpu, gemm_cpu, cpu_ratios = [], [], [], [], []
    with threadpool_limits(threads, user_api="blas"):
        gemm_peak()  # warm-up
        for _ in range(args.repeats):
            start, cpu0 = time.perf_counter(), time.process_time()
            peaks.append(gemm_peak())
            gemm_cpu.append((time.process_time() - cpu0) / (time.perf_counter() - start) / threads)
            start, cpu0 = time.perf_counter(), time.process_time()
            run()
            times.append(time.perf_counter() - start)
            cpu.append((time.process_time() - cpu0) / times[-1] / threads)
            # the same ratio per CPU second: less sensitive to what else runs on the machine
            cpu_ratios.append(2 * work / (cpu[-1] * times[-1]) / (peaks[-1] / gemm_cpu[-1]))
    ratios = [2 * work / t / p for t, p in zip(times, peaks, strict=True)]
    t_voxel, peak, ratio = statistics.median(times), statistics.median(peaks), statistics.median(ratios)
    print(f"[2] voxel mode: {args.seeds} seeds x {args.voxels} voxels x {args.trs} TRs x {args.subjects} subjects "
          f"on {threads} threads in {t_voxel:.3f} s = {work / t_voxel / 1e9:.2f} G seed-voxel-TRs/s = "
          f"{2 * work / t_voxel / 1e9:.1f} GFLOP/s; float32 GEMM peak (2048^3, {threads} BLAS threads) "
          f"{peak / 1e9:.1f} GFLOP/s; ratio {ratio:.0%} (repeats: {', '.join(f'{r:.0%}' for r in ratios)}) "
          f"[goal >= 50 %: {'met' if ratio >= 0.5 else 'NOT met'}]")
    print(f"    CPU share of the process: {statistics.median(cpu):.0%} of {threads} cores during the voxel runs, "
          f"{statistics.median(gemm_cpu):.0%} during the GEMM peak; per CPU second the ratio is "
          f"{statistics.median(cpu_ratios):.0%}; load average {os.getloadavg()[0]:.1f}")
    _breakdown(source, seed_coords, threads, args.repeats)

    # 3. memory --------------------------------------------------------------------------------
    peaks = {}
    for n_subjects in (args.subjects, 2 * args.subjects):
        generated = _Generated(args.voxels, args.trs, n_subjects)
        tracemalloc.start()
        voxel_seed_maps(generated, seed_coords, radius=0, n_workers=args.workers)
        peaks[n_subjects] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    subject_bytes = args.trs * args.voxels * 4
    maps_bytes = args.seeds * args.voxels * 8
    print("[3] peak memory (traced, series generated per subject on demand): "
          + ", ".join(f"{k} subjects {v / 2**20:.0f} MiB" for k, v in peaks.items())
          + f"; one subject's series {subject_bytes / 2**20:.0f} MiB, one float64 seed x voxel map "
          f"{maps_bytes / 2**20:.0f} MiB (4 float32 sums, written over by the 4 float32 maps at the end; 4 float64 totals once a run has more than 8 subjects); "
          f"process max RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (includes the in-memory data of [2])")


class _Generated(_InMemory):
    """Like _InMemory but makes each subject's series when asked, so nothing is held between subjects."""

    def __init__(self, n_voxels: int, n_trs: int, n_subjects: int):
        side = int(np.ceil(n_voxels ** (1 / 3)))
        ijk = np.argwhere(np.ones((side, side, side), dtype=bool))[:n_voxels]
        self._shape = (n_trs, n_voxels)
        VoxelConnectome.__init__(self, name="generated", shape=(side, side, side),
                                 affine=np.diag([2.0, 2.0, 2.0, 1.0]), ijk=ijk,
                                 subjects=[f"sub{i}" for i in range(n_subjects)], provenance=Provenance(source="random"))

    def runs(self, subject):
        rng = np.random.default_rng(int(subject[3:]))
        return [rng.standard_normal(self._shape, dtype=np.float32)]


if __name__ == "__main__":
    main()
