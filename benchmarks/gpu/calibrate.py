"""Run a batch of vLLM engine configurations on the GPU machine, one process each, and collect their logs.

Each configuration (benchmarks/gpu/configs.json) starts ``probe_engine.py`` in its own process group with
``VLLM_LOGGING_LEVEL=DEBUG`` and a timeout, waits until it reports ready (or a start failure), sends the
configured requests, then kills the group and waits for the GPU to be free again. The log is parsed with
``parse_vllm_log.py``; the parsed rows go to ``OUT/results_<batch>.json`` and the logs into
``OUT/logs_<batch>.tar.gz``; a table is printed last.

Usage: python3 benchmarks/gpu/calibrate.py --batch A --models DIR --out $OUT [--deadline-s 540]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from parse_vllm_log import parse_log, table  # noqa: E402


def _gpu_used_mib() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
        return int(out.split()[0])
    except Exception:  # noqa: BLE001
        return -1


def _wait_gpu_free(limit_s: float = 30.0) -> None:
    t0 = time.time()
    while time.time() - t0 < limit_s:
        used = _gpu_used_mib()
        if 0 <= used < 1024:
            return
        time.sleep(1)


def run_one(cfg: dict, models: Path, logdir: Path) -> dict:
    name = cfg["name"]
    log = logdir / f"{name}.log"
    env = dict(os.environ, VLLM_LOGGING_LEVEL="DEBUG", PYTHONUNBUFFERED="1")
    env.pop("VLLM_USE_V2_MODEL_RUNNER", None)
    if cfg.get("runner") == "v1":
        env["VLLM_USE_V2_MODEL_RUNNER"] = "0"
    env.update({k: str(v) for k, v in cfg.get("env", {}).items()})
    argv = [sys.executable, str(HERE / "probe_engine.py"), str(models / cfg["model"]),
            json.dumps(cfg["engine"]), cfg.get("requests", "none")]
    t0 = time.time()
    with open(log, "w") as fh:
        fh.write(f"# config {json.dumps(cfg)}\n")
        fh.flush()
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=cfg.get("timeout_s", 180))
        except subprocess.TimeoutExpired:
            timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    _wait_gpu_free()
    row = parse_log(log.read_text(errors="replace"))
    row.update(name=name, wall_s=round(time.time() - t0, 1), timed_out=timed_out, rc=proc.returncode,
               config=cfg)
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", required=True)
    ap.add_argument("--models", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--configs", default=str(HERE / "configs.json"))
    ap.add_argument("--deadline-s", type=float, default=540.0)
    ap.add_argument("--only", default="", help="comma-separated config names")
    args = ap.parse_args()
    start = time.time()
    configs = [c for c in json.loads(Path(args.configs).read_text()) if c["batch"] == args.batch]
    if args.only:
        keep = set(args.only.split(","))
        configs = [c for c in configs if c["name"] in keep]
    logdir = Path("/tmp/calib") / f"logs_{args.batch}"  # only the tarball goes under OUT (8 files at most)
    logdir.mkdir(parents=True, exist_ok=True)
    rows = []
    results = args.out / f"results_{args.batch}.json"
    for cfg in configs:
        left = args.deadline_s - (time.time() - start)
        need = cfg.get("est_s", 60)
        if left < need:
            rows.append({"name": cfg["name"], "skipped": f"{left:.0f}s left < {need}s needed", "config": cfg})
            continue
        cfg = dict(cfg, timeout_s=min(cfg.get("timeout_s", 180), max(left - 15, 30)))
        print(f"[{time.time() - start:6.0f}s] {cfg['name']} ...", flush=True)
        row = run_one(cfg, args.models, logdir)
        rows.append(row)
        results.write_text(json.dumps(rows, indent=1))
        print(f"[{time.time() - start:6.0f}s] {cfg['name']}: {row.get('verdict')} kv_tokens={row.get('kv_tokens')} "
              f"wall={row['wall_s']}s", flush=True)
        with tarfile.open(args.out / f"logs_{args.batch}.tar.gz", "w:gz") as tar:
            tar.add(logdir, arcname=f"logs_{args.batch}")
    results.write_text(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
