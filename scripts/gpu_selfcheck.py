"""The plugin's device code on one GPU, without SGLang: a proof that it replays, never
waits, is batch-invariant, matches float64 references, and is fast enough.

    python scripts/gpu_selfcheck.py [--device cuda|cpu] [--quick] [--out FILE.json]

Run it from the repository root (it puts ``sglang_soft_thinking_pkg`` on the path). It
needs PyTorch (2.11 or later) and pydantic, not SGLang. On a machine with no package
registry, carry pydantic's wheels (five files, 2.8 MB for CPython 3.12, manylinux x86_64:
pydantic 2.14.4, pydantic-core 2.50.5, annotated-types 0.8.0, typing-inspection 0.4.5,
typing-extensions 4.16.0): ``scripts/fetch_selfcheck_wheels.sh`` downloads them into
``.whl/`` here (ignored by git). With ``.whl`` carried along, run there, from the repository root (a wheel is a zip archive: unpacked on a
path it is installed, no pip needed; ``pip install --no-index --no-deps --target DIR
.whl/*.whl`` does the same)::

    mkdir -p /tmp/selfcheck_deps && \\
    for w in .whl/*.whl; do python3 -m zipfile -e "$w" /tmp/selfcheck_deps; done && \\
    PYTHONPATH=/tmp/selfcheck_deps timeout 300 python3 scripts/gpu_selfcheck.py --out $OUT/selfcheck.json

Checks, each PASS or FAIL; a check that raises is a FAIL with its stack in the report, the
next check still runs, and ``--out`` is always written:

* replay: the decode step (the mixing, then the logits hook's keeping of the hidden
  states) is captured in a ``torch.cuda.CUDAGraph`` while no row thinks (on a CPU traced by
  ``torch.jit.trace``), the soft step once per batch plan, then replayed while rows of
  every kind think: each method (switch with its maths tokens and first blend, Dirichlet
  and Gumbel noise, the unsorted whole-vocabulary sample, multiplex, think_router, mixture
  of inputs, discrete, selar, latent with both projections), plain rows among them; rows
  leave thinking (the model's think-end, the budget, Cold Stop) and start answering, latent
  rows leave their latent segment after ``max_latent_steps`` vectors and think on
  explicitly; half are re-admitted with other methods and widths. Each replay equals an
  eager twin bitwise, its mixtures equal a float64 ``sum_i w_i E[ids_i]`` within the
  embedding dtype's rounding, each vector fed equals a float64 ``h W_a`` rescaled to the
  mean input-row norm (``W_a`` by its own least squares; ``projection: "none"``: ``h``),
  a vector step's trace lists its float64 nearest tokens by cosine, and each thought
  matches the float64 reference of its method (selfcheck/reference.py, vectors.py);
* no_waits: admission, mixing, the hidden states kept, every method's step (latent's
  vectors included) and the records' copy under :func:`sync_guard.no_host_sync`, every
  input made beforehand (on CUDA PyTorch's sync debug mode raises on a wait; on a CPU the
  check runs with its tensors on ``meta``, where the guard refuses pageable and blocking
  copies);
* batch_invariance: a row's step and mixed input alone equal those in a batch, bitwise;
* vocab_split: ``ShardMixer`` over the vocabulary split 2 and 4 ways equals float64;
* padded_rows: through the plugin's embedding hook, SGLang's padded decode rows pointing
  at request row 0 change no real row's input or mark;
* speed: the soft step at batch 1, 64 and 256 over a 152k vocabulary against plain
  sampling with the same cuts; on a GPU at most 3x at batch 64 and 256 (selfcheck/speed.py).

Exits 0 when every check passes; the JSON has every figure and a "verdict".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sglang_soft_thinking_pkg"))
sys.path.insert(0, str(ROOT / "scripts"))

import torch  # noqa: E402

from selfcheck.bench import Bench  # noqa: E402
from selfcheck.checks import check_batch_invariance, check_no_waits, check_padded_rows, check_vocab_split  # noqa: E402
from selfcheck.replay import check_replay  # noqa: E402
from selfcheck.speed import speed  # noqa: E402


def run_check(fn, *args) -> dict:
    """A check's result; one that raises is a FAIL with its error and stack."""
    began = time.perf_counter()
    try:
        result = fn(*args)
    except Exception as error:  # noqa: BLE001 - any failure is the check's
        result = {"pass": False, "problem": f"{type(error).__name__}: {error}", "stack": traceback.format_exc()}
    result["seconds"] = round(time.perf_counter() - began, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes (the CPU form the test suite runs)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    report = {"device": str(device), "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None, "checks": {}}
    ok, began = False, time.perf_counter()
    try:
        if args.quick:
            sizes = dict(vocab=2048, hidden=64, dtype=torch.float32)
            batches, replay_batch, repeats = [1, 8], 16, 3
        else:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
            sizes = dict(vocab=152064, hidden=4096, dtype=dtype)
            batches, replay_batch, repeats = [1, 64, 256], 52, 20
        bench = Bench(device, **sizes)
        report["vocab"], report["dtype"] = bench.vocab, str(bench.dtype)
        # On a CPU a copy to the device is no copy at all: the no-waits check runs on meta.
        waits_bench = bench if device.type != "cpu" else Bench(torch.device("meta"), **sizes)
        checks = report["checks"]
        checks["replay"] = run_check(check_replay, bench, replay_batch, 8)
        checks["no_waits"] = run_check(check_no_waits, waits_bench, replay_batch)
        checks["batch_invariance"] = run_check(check_batch_invariance, bench, 13)
        checks["vocab_split"] = run_check(check_vocab_split, bench)
        checks["padded_rows"] = run_check(check_padded_rows, bench)
        checks["speed"] = run_check(speed, bench, batches, repeats)
        for name, result in checks.items():
            shown = {k: v for k, v in result.items() if k != "stack"}
            print(f"{'PASS' if result['pass'] else 'FAIL'}  {name}: {json.dumps(shown)}")
            if "stack" in result:
                print(result["stack"])
        ok = all(result["pass"] for result in checks.values())
    except Exception:  # noqa: BLE001 - the bench itself failed: still a report
        report["error"] = traceback.format_exc()
        print(report["error"])
    finally:
        report["seconds"] = round(time.perf_counter() - began, 1)
        report["verdict"] = "pass" if ok else "fail"
        print(f"verdict: {report['verdict']} ({report['seconds']} s)")
        if args.out:
            args.out.write_text(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
