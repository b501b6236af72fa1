"""Benchmark of event generation: rate accuracy at given targets, and the most one worker can emit.

    .venv/bin/python bench/generation_bench.py [--targets 10,1000,10000] [--window 60] [--ceiling-window 60]

Each target runs a real worker (`faust -A app worker`) against the local stack with a flat rate
(DIURNAL_ENABLED=false) and topics of its own, lets it settle, then reads `/stats/` at the start and end
of the window: achieved = events emitted in the window / window seconds. The ceiling run asks for a rate
far beyond reach and reports events/s and the worker's CPU microseconds per event (from /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAUST = str(Path(sys.executable).with_name("faust"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SETTLE_SECONDS = 5.0


def _stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/", timeout=5) as response:
        return dict(json.loads(response.read()))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_at(target: float, window: float, port: int, data_dir: Path) -> dict[str, float]:
    """Run a worker at ``target`` events/s and measure the window after it settles."""
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "TARGET_EPS": str(target),
        "DIURNAL_ENABLED": "false",
        "APP_ID": f"bench-{tag}",
        "WEB_PORT": str(port),
        "DATA_DIR": str(data_dir / tag),
        **{f"TOPIC_{role}": f"bench-{tag}.{role.lower()}" for role in (
            "ORDERS", "PAYMENTS", "SHIPMENTS", "INVENTORY_CHANGES", "CUSTOMER_INTERACTIONS", "DEAD_LETTER"
        )},
    }
    log = (data_dir / f"worker-{tag}.log").open("wb")
    worker = subprocess.Popen([FAUST, "-A", "app", "worker", "-l", "warn"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while True:
            if worker.poll() is not None or time.monotonic() > deadline:
                msg = f"worker at {target}/s did not start; see {log.name}"
                raise SystemExit(msg)
            try:
                if _stats(port)["state"] == "running":
                    break
            except OSError:
                pass
            time.sleep(0.5)
        time.sleep(SETTLE_SECONDS)
        first, cpu_first, t_first = _stats(port), _cpu_seconds(worker.pid), time.monotonic()
        time.sleep(window)
        last, cpu_last, t_last = _stats(port), _cpu_seconds(worker.pid), time.monotonic()
        emitted = last["emitted"] - first["emitted"]
        achieved = emitted / (t_last - t_first)
        return {
            "target": target,
            "achieved": round(achieved, 2),
            "ratio": round(achieved / target, 4),
            "cpu_us_per_event": round((cpu_last - cpu_first) / max(emitted, 1) * 1e6, 2),
            "rss_mb": round(_rss_mb(worker.pid), 1),
            "backpressure_waits": last["backpressure_waits"],
        }
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="10,1000,10000")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--ceiling-window", type=float, default=60.0)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args(argv)
    data_dir = Path("/tmp") / f"datagen-bench-{uuid.uuid4().hex[:6]}"
    data_dir.mkdir(parents=True)
    port = 6090
    results = {"accuracy": [], "ceiling": None}
    print(f"{'target/s':>10} {'achieved/s':>11} {'ratio':>7} {'cpu us/ev':>9} {'rss MB':>7}")
    for target in (float(value) for value in options.targets.split(",")):
        row = run_at(target, options.window, port, data_dir)
        results["accuracy"].append(row)
        print(f"{row['target']:>10.0f} {row['achieved']:>11.1f} {row['ratio']:>7.4f} "
              f"{row['cpu_us_per_event']:>9.1f} {row['rss_mb']:>7.1f}")
    if options.ceiling_window > 0:
        row = run_at(1_000_000, options.ceiling_window, port, data_dir)
        results["ceiling"] = row
        print(f"ceiling: {row['achieved']:.0f} events/s, {row['cpu_us_per_event']:.1f} CPU us/event, "
              f"{row['rss_mb']:.0f} MB resident")
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
