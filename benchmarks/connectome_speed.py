"""Speed and memory of the connectome stage. Prints three figures (medians over repeats):

1. parcel mode: the whole built-in catalogue against every region of enigma-schaefer400
   (seeds → profiles, and the full ``map_targets`` analysis without figures); goal < 1 s;
2. voxel mode: seeds × voxels × TRs per second of ``voxel_seed_maps`` on in-memory float32
   series (file reading excluded), as a fraction of the float32 GEMM peak measured in the same
   run with the same thread setup; goal ≥ 50 %;
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


def gemm_peak(n: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(2).standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up
    return 2 * n**3 / _median_time(lambda: a @ b, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voxels", type=int, default=60000)
    parser.add_argument("--trs", type=int, default=1200)
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1,
                        help="Dask threads (BLAS threads are used inside each GEMM)")
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
    peak = gemm_peak()
    source = _InMemory(args.voxels, args.trs, args.subjects)
    rng = np.random.default_rng(3)
    xyz = source.xyz()
    seed_coords = xyz[rng.choice(len(xyz), args.seeds, replace=False)]

    def run():
        return voxel_seed_maps(source, seed_coords, radius=0, n_workers=args.workers)

    run()  # warm-up (thread pool, caches)
    t_voxel = _median_time(run, args.repeats)
    work = args.seeds * args.voxels * args.trs * args.subjects
    achieved = 2 * work / t_voxel
    print(f"[2] voxel mode: {args.seeds} seeds x {args.voxels} voxels x {args.trs} TRs x {args.subjects} subjects "
          f"in {t_voxel:.3f} s = {work / t_voxel / 1e9:.2f} G seed-voxel-TRs/s = {achieved / 1e9:.1f} GFLOP/s; "
          f"float32 GEMM peak (2048^3) {peak / 1e9:.1f} GFLOP/s; ratio {achieved / peak:.0%} "
          f"[goal >= 50 %: {'met' if achieved / peak >= 0.5 else 'NOT met'}]")

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
          f"{maps_bytes / 2**20:.0f} MiB (4 accumulators + 1 count map are kept); process max RSS "
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
