"""How fast the command line answers: `--help` and bad input, as a user runs them (a fresh interpreter each).

Each case runs `python -m vislab ...` `--repeat` times and reports the median wall time and the exit code.
With `--before SRC` the same cases also run against another checkout's `src/` (same interpreter, same
packages), interleaved, so the before/after ratio comes from one run on one machine:

    git worktree add /tmp/vislab-before 1b3f2b8          # the commit before the CLI was made lazy
    python benchmarks/bench_cli.py --before /tmp/vislab-before/src
    python benchmarks/bench_cli.py --repeat 5 --json cli.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def fake_checkpoint(path: Path, lab: str) -> Path:
    """A vislab checkpoint of `lab` (one tensor), written without torch."""
    import numpy as np
    from safetensors.numpy import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.zeros(2, np.float32)}, str(path),
              metadata={"vislab": json.dumps({"format": "vislab-checkpoint-1", "lab": lab, "config": {}})})
    return path


def cases(tmp: Path) -> dict[str, list[str]]:
    cifar = str(fake_checkpoint(tmp / "cifar" / "checkpoints" / "best.safetensors", "cifar"))
    return {
        "vislab --help": ["--help"],
        "vislab fashion train --help": ["fashion", "train", "--help"],
        "fashion train --epochs -1": ["fashion", "train", "--epochs", "-1", "--out", str(tmp / "runs")],
        "fashion train --recipe fancy": ["fashion", "train", "--recipe", "fancy", "--out", str(tmp / "runs")],
        "fashion train --backbone nosuch": ["fashion", "train", "--backbone", "nosuch", "--limit", "50",
                                            "--out", str(tmp / "runs")],
        "fashion train --accelerator gpu (no GPU)": ["fashion", "train", "--accelerator", "gpu",
                                                     "--out", str(tmp / "runs")],
        "fashion evaluate CKPT --split bogus": ["fashion", "evaluate", cifar, "--split", "bogus"],
        "fashion evaluate <a CIFAR checkpoint>": ["fashion", "evaluate", cifar],
        "fashion predict CKPT missing.jpg": ["fashion", "predict", cifar, str(tmp / "missing.jpg")],
        "cifar train --model cnnn": ["cifar", "train", "--model", "cnnn", "--out", str(tmp / "runs")],
    }


def run_once(src: Path, args: list[str]) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "120"}
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "vislab", *args], capture_output=True, text=True, env=env,
                         timeout=300)
    return time.perf_counter() - t, res.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (the median is reported)")
    ap.add_argument("--before", type=Path, help="another checkout's src/ to measure in the same run")
    ap.add_argument("--json", type=Path, help="write the results here too")
    a = ap.parse_args(argv)
    sources = {"now": SRC} | ({"before": a.before.resolve()} if a.before else {})
    print(f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
          f"Python {platform.python_version()}, torch {version('torch')}, typer {version('typer')}; "
          f"median of {a.repeat} fresh `python -m vislab` runs per case (page cache warm)")
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as d:
        for name, args in cases(Path(d)).items():
            for src in sources.values():  # warm the page cache and the .pyc files once
                run_once(src, args)
            times: dict[str, list[float]] = {k: [] for k in sources}
            codes: dict[str, int] = {}
            for _ in range(a.repeat):  # interleaved, so a busy machine slows both alike
                for k, src in sources.items():
                    s, codes[k] = run_once(src, args)
                    times[k].append(s)
            results[name] = {k: {"seconds": statistics.median(v), "exit": codes[k]} for k, v in times.items()}
    cols = list(sources)
    header = "| case | " + " | ".join(f"{c} s (exit)" for c in cols) + (" | before / now |" if a.before else " |")
    print(header)
    print("|---" * (len(cols) + 1 + bool(a.before)) + "|")
    for name, r in results.items():
        cells = [f"{r[c]['seconds']:.2f} ({r[c]['exit']})" for c in cols]
        ratio = f" | {r['before']['seconds'] / r['now']['seconds']:.1f}x" if a.before else ""
        print(f"| {name} | " + " | ".join(cells) + ratio + " |")
    worst = max(r["now"]["seconds"] for r in results.values())
    print(f"slowest answer now: {worst:.2f} s")
    if a.json:
        a.json.write_text(json.dumps({"machine": platform.platform(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
