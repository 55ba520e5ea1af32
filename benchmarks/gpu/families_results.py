"""Collect the families visit (visit_families.sh) into docs/validation/families/: results.json and log excerpts.

One row per configuration: model, the equivalent ``vllm serve`` argv, runner asked and used, verdict (or the
first error), vLLM's memory figures (parse_vllm_log.parse_log), the memory/KV lines verbatim, and the KV cache
layout the worker reported (``PROBE KVCFG``: groups, block size, page bytes; for hybrids the state groups apart).

    python benchmarks/gpu/families_results.py RESULTS_F.json LOGS_DIR --out docs/validation/families
    python benchmarks/gpu/families_results.py RESULTS_Q.json LOGS_DIR --out docs/validation/families --merge
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from family_folders import FAMILIES  # noqa: E402
from parse_vllm_log import parse_log  # noqa: E402

MEMORY_LINE = re.compile(
    r"Model loading took|Initial free memory|Memory profiling takes|Available KV cache memory|GPU KV cache size"
    r"|Maximum concurrency|Encoder cache will be initialized|CUDA graph memory|Graph capturing finished"
    r"|Free memory on device|attention block size|mamba page size|[Mm]amba|page size|No available memory"
    r"|To serve at least one request|OutOfMemoryError|CUDA out of memory|torch.compile took|init engine \(")
EXCERPT = re.compile(
    MEMORY_LINE.pattern + r"|^# config|PROBE|non-default args|Using .* backend|V2 Model Runner|model runner"
    r"|ModuleNotFoundError|Error in inspecting|ValidationError|ValueError|RuntimeError|Value error")


def serve_argv(folder: str, engine: dict) -> list[str]:
    """The ``vllm serve`` command line equal to the probe's ``vllm.LLM(**engine, load_format='dummy')``."""
    argv = ["vllm", "serve", f"/tmp/fam/{folder}", "--load-format", "dummy"]
    for key, value in engine.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False:
            argv += [flag, json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else str(value)]
    return argv


def row(res: dict, log_text: str) -> dict:
    cfg = res["config"]
    folder = cfg["model"]
    out = {"name": res["name"], "model": FAMILIES[folder][0], "folder": folder,
           "runner_asked": cfg["runner"], "env": cfg.get("env", {}), "engine": cfg["engine"],
           "argv": shlex.join(serve_argv(folder, cfg["engine"]))}
    if "skipped" in res:
        return out | {"verdict": "not_run", "reason": res["skipped"]}
    parsed = parse_log(log_text)
    keep = ("verdict", "failure", "runner", "weights_gib", "torch_peak_gib", "non_torch_gib", "non_kv_gib",
            "profiled_weights_gib", "cudagraph_estimate_gib", "graph_capture_gib", "available_kv_gib", "kv_tokens",
            "max_model_len", "max_concurrency", "encoder_budget_tokens", "encoder_profile", "init_free_gib",
            "requested_gib", "profile_s", "load_s", "ready_s", "vllm_version")
    out |= {k: parsed[k] for k in keep if k in parsed}
    out["runner_used"] = out.pop("runner", None)
    m = re.search(r"PROBE READY after ([\d.]+)s", log_text)
    if m and out.get("ready_s") is None:
        out["ready_s"] = float(m.group(1))
    if out.get("verdict") == "start_failed":
        cause = re.search(r"ModuleNotFoundError: [^\n]+", log_text)
        if cause:
            out["cause"] = cause.group(0).split("] ")[-1].strip()
    m = re.search(r"Actual usage is [\d.]+ GiB for weight, [\d.]+ GiB for peak activation, [\d.]+ GiB for non-torch "
                  r"memory, and ([\d.]+) GiB for CUDAGraph memory.*?Current kv cache memory in use is ([\d.]+) GiB", log_text)
    if m:
        out["cudagraph_actual_gib"], out["kv_cache_in_use_gib"] = float(m.group(1)), float(m.group(2))
    out["memory_lines"] = [re.sub(r"^.*?\] ", "", ln).strip()[:400] for ln in log_text.splitlines()
                           if MEMORY_LINE.search(ln) and not re.search(r"PROBE|ERROR|Initializing a V1", ln)][:20]
    m = re.search(r"PROBE KVCFG (\{.*\})", log_text)
    if m:
        layout = json.loads(m.group(1))
        tensors = layout.pop("tensors", [])
        layout["tensor_bytes_total"] = sum(t["size"] for t in tensors)
        layout["tensors"] = len(tensors)
        out["kv_layout"] = layout
    m = re.search(r"Setting attention block size to (\d+) tokens", log_text)
    if m:
        out["attention_block_size_logged"] = int(m.group(1))
    m = re.search(r"Padding mamba page size by ([\d.]+)%", log_text)
    if m:
        out["mamba_page_padding_pct"] = float(m.group(1))
    m = re.search(r"PROBE SMI used_total_mib=(\d+), (\d+)", log_text)
    if m:
        out["smi_used_mib_after_start"], out["smi_total_mib"] = int(m.group(1)), int(m.group(2))
    out["wall_s"], out["timed_out"] = res.get("wall_s"), res.get("timed_out")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("logs", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--merge", action="store_true",
                    help="keep the runs already in OUT/results.json (a run of the same name is replaced)")
    args = ap.parse_args()
    rows = []
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    for res in json.loads(args.results.read_text()):
        log = args.logs / f"{res['name']}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        rows.append(row(res, text))
        if text:
            lines = [ln[:600] for ln in text.splitlines() if EXCERPT.search(ln)]
            (args.out / "logs" / log.name).write_text("\n".join(lines[:160]) + "\n")
    meta = {"date": "2026-11-29", "gpu": "NVIDIA H200 (cudaMemGetInfo total 139.80 GiB, 139.29 GiB free at start), "
            "driver 580.159.04", "vllm": "0.26.0", "torch": "2.11.0+cu130", "transformers": "5.17.0",
            "how": "one process per row: benchmarks/gpu/probe_engine.py (vllm.LLM, load_format dummy, "
                   "VLLM_LOGGING_LEVEL=DEBUG, PROBE_KV_DUMP=1) via calibrate.py; folders from family_folders.py",
            "runner_asked": "default: vLLM chooses (VLLM_USE_V2_MODEL_RUNNER unset); v1: =0; v2: =1"}
    if args.merge and (args.out / "results.json").exists():
        before = json.loads((args.out / "results.json").read_text())
        new = {r["name"] for r in rows}
        rows = [r for r in before["runs"] if r["name"] not in new] + rows
        meta = before["meta"]
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=1) + "\n")
    for r in rows:
        print(f"{r['name']:45s} {r.get('verdict'):13s} {str(r.get('runner_used')):5s} kv={r.get('kv_tokens')} "
              f"avail={r.get('available_kv_gib')} w={r.get('weights_gib')} peak={r.get('torch_peak_gib')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
