"""Cold start: the console to its first frame (aim < 1 s), and the CLI's --version / --help.

Each run is a fresh Python process (nothing cached in memory; the OS file cache is warm after
the first run, as it is for an admin starting the console twice). "First frame" is make_app +
run_test until the first screen is mounted, timed from process start; the total wall time
includes the interpreter's own start. Settings, data and keyring are isolated in a temp dir.

    .venv/bin/python bench/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5

CHILD = r"""
import time
t0 = time.perf_counter()
import asyncio
from lc_console.app import make_app

async def main():
    app = make_app("bench")
    t_app = time.perf_counter()
    async with app.run_test(size=(100, 30)) as pilot:
        while app.screen is None or not app.screen.is_mounted or app.screen.id == "_default":
            await pilot.pause(0)
        t_frame = time.perf_counter()
        print(f"{t_app - t0:.4f} {t_frame - t0:.4f} {type(app.screen).__name__}", flush=True)
        import os
        os._exit(0)  # the first frame is what we time, not the teardown

asyncio.run(main())
"""


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        (root / var).mkdir(exist_ok=True)
        env[var] = str(root / var)
    env.pop("LC_CONSOLE_PROFILE", None)
    return env


def _stats(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{label:<44} median {statistics.median(ms):7.0f} ms   max {max(ms):7.0f} ms"


def bench_console(runs: int, env: dict[str, str]) -> None:
    walls, frames, apps = [], [], []
    screen = ""
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                             text=True, timeout=60)
        wall = time.perf_counter() - start
        if out.returncode != 0 or not out.stdout.strip():
            sys.exit(f"console did not start:\n{out.stderr}")
        t_app, t_frame, screen = out.stdout.split()
        apps.append(float(t_app))
        frames.append(float(t_frame))
        walls.append(wall)
    print(f"console cold start, {runs} fresh processes (first screen: {screen})")
    print(_stats("  imports + make_app", apps))
    print(_stats("  imports + make_app + first screen mounted", frames))
    print(_stats("  wall, process start to first screen", walls))
    verdict = "OK" if statistics.median(walls) < 1.0 else "ABOVE the 1 s aim"
    print(f"  aim < 1 s to the first frame: {verdict}")


def bench_cli(runs: int, env: dict[str, str]) -> None:
    exe = Path(sys.executable).with_name("lc-console")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lc_console"]
    print(f"CLI wall time, {runs} runs each ({' '.join(Path(c).name for c in cmd)})")
    for args in (["--version"], ["--help"], ["demo", "--help"]):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            out = subprocess.run(cmd + args, env=env, capture_output=True, timeout=60)
            times.append(time.perf_counter() - start)
            if out.returncode != 0:
                sys.exit(f"{' '.join(args)} failed:\n{out.stderr.decode()}")
        print(_stats(f"  lc-console {' '.join(args)}", times))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, timeout=60)
    print(f"  (bare interpreter start: {(time.perf_counter() - start) * 1000:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lc-bench-startup-") as tmp:
        env = _env(Path(tmp))
        bench_console(args.runs, env)
        bench_cli(args.runs, env)


if __name__ == "__main__":
    main()
