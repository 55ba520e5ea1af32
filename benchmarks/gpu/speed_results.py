"""Collect the speed visit (visit_speed.sh) into docs/validation/speed/: plans, bench JSONs, results.json.

results.json has one row per (model, mix, concurrency): the plan's settings and predictions, the engine's
measured KV figures and start time, and the bench summary (TTFT/TPOT/ITL/E2E percentiles, output tok/s,
prompt and output tokens, taken from the server's usage). Bench JSONs are copied with each request's ITL list
replaced by its count, mean and median (the full lists are several MB); every other field is kept.

    python benchmarks/gpu/speed_results.py SPEED_DIR [SPEED_DIR…] --out docs/validation/speed
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
from pathlib import Path

ENGINE_LINE = re.compile(r"Model loading took|Available KV cache memory|GPU KV cache size|Maximum concurrency"
                         r"|Graph capturing finished|torch.compile took|init engine \(|Free memory on device"
                         r"|Initial free memory|Memory profiling takes|non-default args|V2 Model Runner|Using .* backend")


def _num(pattern: str, text: str) -> float | None:
    m = re.search(pattern, text)
    return float(m.group(1).replace(",", "")) if m else None


def engine_figures(log: str) -> dict:
    """Measured figures from one engine log (INFO level)."""
    return {"weights_gib": _num(r"Model loading took ([\d.]+) GiB", log),
            "available_kv_gib": _num(r"Available KV cache memory: ([\d.]+) GiB", log),
            "kv_tokens": int(_num(r"GPU KV cache size: ([\d,]+) tokens", log) or 0) or None,
            "max_concurrency": _num(r"Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x", log),
            "graph_capture_gib": _num(r"Graph capturing finished in \d+ secs, took ([\d.]+) GiB", log),
            "compile_s": _num(r"torch.compile took ([\d.]+) s", log),
            "init_engine_s": _num(r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+) s", log)}


def compact(bench: dict) -> dict:
    """The bench JSON with per-request ITL lists summarised."""
    out = json.loads(json.dumps(bench))
    for level in out["levels"]:
        for req in level.get("requests_detail", []):
            itl = req.pop("itl", None) or []
            req["itl_n"] = len(itl)
            req["itl_mean"] = round(statistics.fmean(itl), 6) if itl else None
            req["itl_median"] = round(statistics.median(itl), 6) if itl else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="speed folders; a later one wins for the same file")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--how", help="how the runs were made (meta.how; default: the first H200 speed visit's)")
    ap.add_argument("--date", default="2026-11-29", help="the visit's date (meta.date)")
    args = ap.parse_args()
    files: dict[str, Path] = {}
    for d in args.dirs:
        files |= {p.name: p for p in sorted(d.iterdir())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "logs").mkdir(exist_ok=True)
    rows, engines = [], {}
    for name in sorted(files):
        m = re.fullmatch(r"plan_(\w+)\.(json|txt)", name)
        if m:
            shutil.copy(files[name], args.out / name)
        m = re.fullmatch(r"serve_(\w+)_dryrun\.txt", name)
        if m:
            shutil.copy(files[name], args.out / name)
        m = re.fullmatch(r"engine_(\w+)\.log", name)
        if m:
            text = files[name].read_text(errors="replace")
            lines = [re.sub(r"^\(EngineCore pid=\d+\) ", "", ln)[:500] for ln in text.splitlines() if ENGINE_LINE.search(ln)]
            (args.out / "logs" / name).write_text("\n".join(lines) + "\n")
            ready = files.get(f"ready_{m.group(1)}.txt")
            rtext = ready.read_text() if ready else ""
            engines[m.group(1)] = engine_figures(text) | {
                "ready_s": _num(r"ready_s=(\d+)", rtext), "smi_used_mib_ready": _num(r"(\d+) MiB", rtext)}
    for name in sorted(files):
        m = re.fullmatch(r"bench_(\w+?)_(image|text|video)\.json", name)
        if not m:
            continue
        model, mix = m.groups()
        bench = json.loads(files[name].read_text())
        (args.out / name).write_text(json.dumps(compact(bench), indent=1) + "\n")
        plan = json.loads(files[f"plan_{model}.json"].read_text())
        p = plan["plan"]
        settings = {k: p.get(k) for k in ("gpu_memory_utilization", "max_model_len", "enforce_eager", "model_runner",
                                          "max_num_seqs", "max_num_batched_tokens", "dtype")}
        predicted = {k: p.get(k) for k in ("kv_cache_tokens", "max_concurrency")}
        for level in bench["levels"]:
            s = level["summary"]
            done = max(1, s["completed"])
            rows.append({
                "model": f"Qwen/Qwen2.5-VL-{model}-Instruct", "size": model, "mix": bench["meta"]["mix"],
                "concurrency": level["concurrency"], "max_tokens": bench["meta"]["max_tokens"],
                "media_reuse": bench["meta"].get("media_reuse", "pool of 4"),
                "prompt_words": bench["meta"].get("prompt_tokens", bench["meta"].get("prompt_words")), "requests": s["requests"],
                "completed": s["completed"], "failed": s["failed"], "errors": s["errors"],
                "duration_s": s["duration_s"], "prompt_tokens_per_request": round(s["total_input_tokens"] / done, 1),
                "output_tokens_per_request": round(s["total_output_tokens"] / done, 1),
                "request_throughput": s["request_throughput"], "output_throughput": s["output_throughput"],
                "total_token_throughput": s["total_token_throughput"],
                "ttft_s": s["ttft_s"], "tpot_s": s["tpot_s"], "itl_s": s["itl_s"], "e2e_s": s["e2e_s"],
                "plan": settings, "plan_predicted": predicted, "engine": engines.get(model, {}),
                "bench_file": name})
    meta = {"date": args.date, "gpu": "NVIDIA H200 (143771 MiB in nvidia-smi), driver 580.159.04",
            "vllm": "0.26.0", "torch": "2.11.0+cu130", "transformers": "5.17.0",
            "how": "vlmctl plan MODEL --gpus h200:1 --json; vlmctl serve --plan (vLLM with --load-format dummy via "
                   "benchmarks/gpu/vllm_dummy.py); vlmctl bench --duration 10 (8 for text/video) per level, "
                   "--warmup 2 (1 for video), --max-tokens 96 --prompt-words 48 --ignore-eos; "
                   "image@1280x720 at 1/8/32, text at 1/32 and video@640x360x8 at 1/8 (7B only)"
                   if not args.how else args.how,
            "folders": "vlmctl models materialize (real configs, locally trained tokenizer, dummy weights)"}
    if "gpu.txt" in files:  # what the visit itself recorded (nvidia-smi, package versions)
        meta["visit_gpu_txt"] = files["gpu.txt"].read_text().strip().splitlines()
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "engines": engines, "rows": rows}, indent=1) + "\n")
    for r in rows:
        print(f"{r['size']:4s} {r['mix'][0]:20s} c={r['concurrency']:<3} ok={r['completed']:<4} "
              f"out/s={r['output_throughput']:8.1f} ttft50={r['ttft_s']['p50'] * 1000:6.0f}ms "
              f"tpot50={r['tpot_s']['p50'] * 1000:5.1f}ms prompt={r['prompt_tokens_per_request']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
