"""How long ``neuromodmap --help`` and every sub-command's ``--help`` take, and what they load.

    PYTHONPATH=src .venv/bin/python benchmarks/cli_help_speed.py [--runs 7] [--quick]

Each command runs ``--runs`` times in a fresh interpreter (``python -m neuromodmap ... --help``
through :mod:`subprocess`); the median wall time is printed per command, beside the median of
a bare ``python -c pass`` and of ``import typer, rich`` (the floor any typer CLI pays). The
target is under 0.3 s per help. It also prints the heavy libraries (scipy, nilearn, DuckDB,
pandas, matplotlib, numpy, nibabel, sklearn) that ``import neuromodmap`` and a help run
load: there should be none. Print ``uptime``'s load beside the figures: on a busy machine
every number grows.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

HEAVY = ("scipy", "nilearn", "duckdb", "pandas", "matplotlib", "numpy", "nibabel", "sklearn", "httpx")


def _commands() -> list[list[str]]:
    from typer.main import get_command

    from neuromodmap.cli import app

    root = get_command(app)
    out = [[]]
    for name, group in root.commands.items():
        out.append([name])
        for sub in getattr(group, "commands", {}):
            out.append([name, sub])
    return out


def _time(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system of the child) over ``runs`` runs.

    On a loaded machine the wall time grows with the load; the CPU time much less.
    """
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def _loaded(code: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stderr
    return out.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="Only the root and each stage's --help.")
    args = parser.parse_args()
    py = sys.executable
    print(f"load average {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}; median of {args.runs} runs")
    print(f"{'command':<44} {'wall s':>7} {'cpu s':>7}")

    def show(label: str, argv: list[str]) -> tuple[float, float]:
        wall, cpu = _time(argv, args.runs)
        print(f"{label:<44} {wall:7.3f} {cpu:7.3f}")
        return wall, cpu

    show("python -c pass", [py, "-c", "pass"])
    show("import typer, rich.console", [py, "-c", "import typer, rich.console"])
    show("import neuromodmap", [py, "-c", "import neuromodmap"])
    worst_wall = worst_cpu = 0.0
    for cmd in _commands():
        if args.quick and len(cmd) > 1:
            continue
        wall, cpu = show(" ".join(["neuromodmap", *cmd, "--help"]), [py, "-m", "neuromodmap", *cmd, "--help"])
        worst_wall, worst_cpu = max(worst_wall, wall), max(worst_cpu, cpu)
    print(f"slowest help: {worst_wall:.3f} s wall, {worst_cpu:.3f} s CPU (target: under 0.3 s)")
    print("heavy libraries loaded by `import neuromodmap`:", _loaded("import neuromodmap") or "none")
    help_probe = ("import sys\nfrom neuromodmap.cli import app\nsys.argv=['neuromodmap','--help']\n"
                  "try:\n    app()\nexcept SystemExit:\n    pass")
    print("heavy libraries loaded by `neuromodmap --help`:", _loaded(help_probe) or "none")


if __name__ == "__main__":
    main()
