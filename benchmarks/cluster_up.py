"""Seconds from `vlmctl cluster up` to two live nodes, on two network-namespace "hosts" (target ≤ 20 s).

    sudo .venv/bin/python benchmarks/cluster_up.py [--runs 3] [--out artifacts/cluster_up.json]

Each run: fresh namespaces (head NIC enp134s0f0, worker NIC eth1, private 10.231.7.0/24 inside them
only), `vlmctl cluster up` in the head namespace, `vlmctl cluster join` in the worker namespace, then
a Ray driver on the head polls until both nodes are alive. Reports up, join, two-live (the target)
and the time of a full `vlmctl cluster status` (which also probes GPUs on every node); then
`vlmctl cluster down` and teardown.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vlmctl.cluster import netns

TARGET_S = 20.0
# Started as soon as `up` returns, so its own start-up overlaps the join: prints the wall-clock time at
# which the GCS first lists two live nodes.
_LIVE = """
import sys, time
import ray._private.state as state
from ray._raylet import GcsClientOptions
gs = state.GlobalState()
gs._initialize_global_state(GcsClientOptions.create(sys.argv[1] + ":6379", None, allow_cluster_id_nil=True,
                                                    fetch_cluster_id_if_nil=False))
while sum(1 for n in gs.node_table() if n["Alive"]) < 2:
    time.sleep(0.05)
print(time.time())
"""


def _vlmctl(hosts: netns.TwoHosts, ns: str, env: dict, *args: str) -> None:
    res = subprocess.run(hosts.argv(ns, sys.executable, "-m", "vlmctl.cli.main", *args), env=env,
                         capture_output=True, text=True, timeout=180)
    if res.returncode != 0:
        raise SystemExit(f"vlmctl {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()[-800:]}")


def one_run(work: Path, index: int, dashboard: bool = True) -> dict:
    model = work / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    cluster = work / "cluster.yaml"
    cluster.write_text(netns.cluster_yaml("bench", str(model)))
    root = f"/tmp/vlb{os.getpid() % 100000}-{index}"
    env = dict(os.environ, VLMCTL_STATE_ROOT=root, NO_COLOR="1")
    hosts = netns.TwoHosts(tag=f"{os.getpid() % 10000}{index}")
    hosts.up()
    try:
        wall0, t0 = time.time(), time.monotonic()
        _vlmctl(hosts, hosts.head, env, "cluster", "up", "--cluster", str(cluster), *([] if dashboard else ["--no-dashboard"]))
        t_up = time.monotonic()
        watcher = subprocess.Popen(hosts.argv(hosts.head, sys.executable, "-c", _LIVE, netns.HEAD_IP), env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        _vlmctl(hosts, hosts.worker, env, "cluster", "join", "--cluster", str(cluster))
        t_join = time.monotonic()
        try:
            live_wall = float(watcher.communicate(timeout=120)[0].strip().splitlines()[-1])
        finally:
            watcher.kill()
        t_live = t0 + (live_wall - wall0)
        _vlmctl(hosts, hosts.head, env, "cluster", "status", "--json", "--cluster", str(cluster))
        t_status = time.monotonic()
        _vlmctl(hosts, hosts.head, env, "cluster", "down", "--cluster", str(cluster))
        t_down = time.monotonic()
        return {"up_s": round(t_up - t0, 2), "join_s": round(t_join - t_up, 2), "two_live_s": round(t_live - t0, 2),
                "status_s": round(t_status - t_join, 2), "down_s": round(t_down - t_status, 2),
                "load_avg_1m": float(Path("/proc/loadavg").read_text().split()[0])}
    finally:
        from vlmctl.cluster.ray_node import stop_local

        for d in Path(root).glob("*"):
            stop_local(d, timeout=5)
        hosts.down()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="artifacts/cluster_up.json")
    ap.add_argument("--no-dashboard", action="store_true", help="start the head without Ray's dashboard")
    args = ap.parse_args()
    reason = netns.unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            runs.append(one_run(Path(tmp), i, dashboard=not args.no_dashboard))
    keys = ("up_s", "join_s", "two_live_s", "status_s", "down_s", "load_avg_1m")
    median = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}
    variant = "no dashboard" if args.no_dashboard else "dashboard on"
    table = Table(title=f"cluster up → two live nodes (netns, {os.cpu_count()} cores, {variant}), target ≤ {TARGET_S:.0f} s")
    table.add_column("run")
    for k in keys:
        table.add_column(k)
    for i, r in enumerate(runs):
        table.add_row(str(i + 1), *(f"{r[k]:.2f}" for k in keys))
    table.add_row("median", *(f"{median[k]:.2f}" for k in keys))
    Console().print(table)
    ok = median["two_live_s"] <= TARGET_S
    print(f"two live nodes after {median['two_live_s']:.2f} s (median): {'within' if ok else 'OVER'} the {TARGET_S:.0f} s target")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"target_s": TARGET_S, "ok": ok, "cpu_count": os.cpu_count(), "dashboard": not args.no_dashboard,
                               "runs": runs,
                               "median": median}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
