"""Do soft-thinking requests give the same result in every engine mode SGLang runs in?

    .venv/bin/python scripts/check_engine_modes.py [--model-path PATH] [--modes NAME ...]

For a machine with a GPU (it also runs on a CPU, where graph modes are skipped). It starts
stock ``sglang.launch_server`` (with this plugin) once per mode, in float32, and sends the
same soft-thinking requests (noise off, greedy answer, so the output is deterministic):
in the reference mode (eager: no CUDA graph, no overlap scheduler) each request alone and
a plain greedy request for each prompt; in every other mode all of them at once. Each
mode's requests are compared with the reference, request by request:

* the per-token kinds (think / budget / answer) must be equal;
* every thinking step's concept token must agree within a float tolerance (the first
  ``TIGHT_STEPS`` steps within 0.01, later ones within 0.05; a batch of another size
  rounds differently, and the soft-input loop amplifies that a little); where a
  step's two top weights are nearly tied the written token may differ;
* the output must differ from plain greedy decoding of the same prompt (else no concept
  token was fed at all);
* a ``latent`` request (it feeds hidden-state vectors) that SGLang retracts must be aborted
  with the plugin's error saying its vectors cannot be re-prefilled; that counts as agreeing.

It prints one verdict line per mode and a summary, and exits 0 when every mode agrees.
``--json FILE`` writes the per-request details. The functions here are also what the
engine-mode tests use (tests/integration/test_engine_modes.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.server_process import ServerProcess as RunningServer
from benchmarks.server_process import free_port
from evaluation.locations import default_model_dir

TIGHT_STEPS, TIGHT_ATOL, LOOSE_ATOL = 8, 0.01, 0.05
PROMPTS = [
    "Tom has 3 apples and buys 5 more. How many apples does he have?",
    "What is the capital of France?",
    "Explain gravity in one sentence.",
    "List three primary colors.",
    "How many legs does a spider have?",
    "What is 12 times 7?",
    "Name a prime number greater than ten.",
    "Name a planet with rings.",
]
SOFT = {"max_topk": 5, "min_p": 0.001, "max_thinking_tokens": 16,
        "early_stopping_entropy_threshold": 0, "after_thinking": {"temperature": 0},
        "return_trace": True}
# The requests take the thinking methods in turn (one prompt each), so every mode is checked
# for each; every request has a seed, so a request draws alike alone and batched.
METHODS = [{}, {"method": "mixture_of_inputs", "beta": 1.0}, {"method": "switch", "window_size": 2},
           {"method": "think_router", "tau": 0.5}, {"method": "multiplex", "width": 3},
           {"method": "discrete"}, {"method": "selar", "selar_threshold": 0.3},
           {"method": "latent", "max_latent_steps": 6}]
MAX_NEW_TOKENS = 24


def soft_body(index: int, input_ids: list[int], **kwargs) -> dict:
    """Request ``index``'s soft-thinking body: SOFT with the method of its turn, seeded."""
    body = generate_body(input_ids, {**SOFT, **METHODS[index % len(METHODS)]}, **kwargs)
    body["sampling_params"]["sampling_seed"] = 1000 + index
    return body


@dataclass
class Mode:
    name: str
    flags: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    needs_gpu: bool = False


REFERENCE = Mode("eager", ["--disable-cuda-graph", "--disable-overlap-schedule"])
MODES = [
    Mode("default (CUDA graphs, overlap)", needs_gpu=True),
    Mode("CUDA graphs, no overlap", ["--disable-overlap-schedule"], needs_gpu=True),
    Mode("overlap, no CUDA graphs", ["--disable-cuda-graph"]),
    Mode("overlap, delayed sampling", ["--disable-cuda-graph"], {"SGLANG_ENABLE_DELAY_SAMPLE": "1"}),
    Mode("mixed chunked prefill", ["--enable-mixed-chunk", "--chunked-prefill-size", "64"]),
    Mode("retraction every few steps", [], {"SGLANG_TEST_RETRACT": "1"}),
    Mode("retraction, no radix cache", ["--disable-radix-cache"], {"SGLANG_TEST_RETRACT": "1"}),
    # The first request retracted (prompt 0, 48 tokens with the default model) is re-prefilled
    # in 25-token chunks, the last past its prompt.
    Mode("retraction, chunked re-prefill", ["--chunked-prefill-size", "25", "--disable-radix-cache"],
         {"SGLANG_TEST_RETRACT": "1", "SGLANG_TEST_RETRACT_INTERVAL": "8"}),
]


# --- requests ------------------------------------------------------------------------

def prompt_ids(tokenizer, question: str) -> list[int]:
    return list(tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                              add_generation_prompt=True, tokenize=True,
                                              return_dict=False))


def generate_body(input_ids: list[int], soft: dict | None, max_new_tokens: int = MAX_NEW_TOKENS,
                  ignore_eos: bool = True) -> dict:
    """A native ``/generate`` body: soft thinking at temperature 0.7, or plain greedy, of
    exactly ``max_new_tokens`` tokens. Without ``ignore_eos`` the length is held by
    ``min_new_tokens`` instead, and SGLang admits the request on its estimate of the
    tokens it will need rather than reserving them all (so it may have to retract it)."""
    sampling = {"temperature": 0.7 if soft else 0.0, "max_new_tokens": max_new_tokens,
                "ignore_eos": ignore_eos}
    if not ignore_eos:
        sampling["min_new_tokens"] = max_new_tokens
    if soft:
        sampling["custom_params"] = {"soft_thinking": soft}
    return {"input_ids": input_ids, "sampling_params": sampling}


async def _post(client: httpx.AsyncClient, body: dict) -> dict:
    response = await client.post("/generate", json=body)
    if response.status_code != 200 and VECTOR_RESUME_REFUSED in response.text:
        return {"output_ids": [], "meta_info": {"finish_reason": {"type": "abort", "message": response.text}}}
    response.raise_for_status()
    return response.json()


async def generate(base_url: str, bodies: list[dict], together: bool) -> list[dict]:
    """POST each body to ``/generate``: all at once, or one after another."""
    async with httpx.AsyncClient(base_url=base_url, timeout=900) as client:
        if together:
            return list(await asyncio.gather(*(_post(client, body) for body in bodies)))
        return [await _post(client, body) for body in bodies]


async def generate_behind(base_url: str, ahead: list[dict], bodies: list[dict]) -> list[dict]:
    """``bodies`` all at once, sent when every ``ahead`` request has written its first token
    (they stream), so each of ``bodies`` has at most as many outputs as any ``ahead`` one for
    as long as both run. SGLang retracts the request with the fewest outputs (then the longest
    prompt) first, so this fixes which ones a retraction takes, whatever the arrival order over
    HTTP. Returns the outputs of ``bodies``."""
    async with httpx.AsyncClient(base_url=base_url, timeout=900) as client:
        started = [asyncio.Event() for _ in ahead]

        async def stream(body: dict, first_token: asyncio.Event) -> None:
            try:
                async with client.stream("POST", "/generate", json={**body, "stream": True}) as response:
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        if line.startswith("data:"):
                            first_token.set()
            finally:
                first_token.set()

        streams = [asyncio.ensure_future(stream(body, event)) for body, event in zip(ahead, started)]
        await asyncio.gather(*(event.wait() for event in started))
        outputs = await asyncio.gather(*(_post(client, body) for body in bodies))
        await asyncio.gather(*streams)
        return list(outputs)


# --- comparison ----------------------------------------------------------------------

def trace_of(output: dict) -> list[dict]:
    """The thinking steps of a ``/generate`` output, as ``{"ids", "weights", "entropy"}``
    (and ``"vector": True`` for a step that fed a vector: its weights are cosines)."""
    records = output["meta_info"].get("soft_thinking") or []
    return [{"ids": r[2], "weights": r[3], "entropy": r[1], "vector": len(r) > 5 and r[5] == "vector"}
            for r in records if r is not None and r[0] == "think"]


# A request whose method feeds vectors is refused re-prefill after a retraction (resume.py).
VECTOR_RESUME_REFUSED = "feeds hidden-state vectors, which a re-prefill"


def refused_resume(output: dict) -> bool:
    """Whether SGLang retracted the request and the plugin aborted it, as it must, for the
    vectors it fed cannot be rebuilt."""
    return VECTOR_RESUME_REFUSED in json.dumps(output["meta_info"].get("finish_reason"))


def kinds_of(output: dict) -> list[str | None]:
    return [r[0] if r is not None else None for r in output["meta_info"].get("soft_thinking") or []]


def trace_mismatches(ours: list[dict], reference: list[dict]) -> list[str]:
    """Where two traces of the same request disagree beyond the tolerances (module doc)."""
    problems = []
    if len(ours) != len(reference):
        problems.append(f"{len(ours)} thinking steps, reference {len(reference)}")
    for step, (mine, ref) in enumerate(zip(ours, reference)):
        atol = TIGHT_ATOL if step < TIGHT_STEPS else LOOSE_ATOL
        ref_weights, my_weights = dict(zip(ref["ids"], ref["weights"])), dict(zip(mine["ids"], mine["weights"]))
        gap = ref["weights"][0] - (ref["weights"][1] if len(ref["weights"]) > 1 else 0.0)
        if gap > atol and mine["ids"][0] != ref["ids"][0]:
            problems.append(f"step {step}: wrote {mine['ids'][0]}, reference {ref['ids'][0]}")
        for token in set(ref_weights) | set(my_weights):
            if token in ref_weights and token in my_weights:
                diff = abs(ref_weights[token] - my_weights[token])
            else:  # kept on one side only: it must tie with the other side's smallest weight
                other = ref["weights"] if token in my_weights else mine["weights"]
                diff = abs(my_weights.get(token, ref_weights.get(token)) - other[-1])
            if diff > atol:
                problems.append(f"step {step}: token {token} weight differs by {diff:.4f}")
        if abs(mine["entropy"] - ref["entropy"]) > atol:
            problems.append(f"step {step}: entropy {mine['entropy']:.4f}, reference {ref['entropy']:.4f}")
        if mine.get("vector") or ref.get("vector"):  # cosines of the nearest tokens
            if mine.get("vector") != ref.get("vector"):
                problems.append(f"step {step}: a vector step on one side only")
            continue
        # Sorted by weight after ids[0] (the mixture of inputs puts its sampled token first).
        if mine["weights"][1:] != sorted(mine["weights"][1:], reverse=True) or not math.isclose(
                sum(mine["weights"]), 1.0, abs_tol=1e-3):
            problems.append(f"step {step}: weights not sorted or not normalised")
    return problems


def output_mismatches(output: dict, reference: dict, plain: dict | None = None) -> list[str]:
    """Everything in which one soft request's output disagrees with the reference."""
    problems = []
    if refused_resume(output):
        return problems  # refused loudly, as designed: nothing served plainly
    if kinds_of(output) != kinds_of(reference):
        problems.append(f"kinds {kinds_of(output)} != reference {kinds_of(reference)}")
    problems += trace_mismatches(trace_of(output), trace_of(reference))
    if plain is not None and output["output_ids"] == plain["output_ids"]:
        problems.append("the output equals plain greedy decoding: no concept token was fed")
    return problems


# --- servers -------------------------------------------------------------------------

def start_stock(model_path: str, mode: Mode, dtype: str = "float32",
                max_total_tokens: int = 16384) -> RunningServer:
    """Stock ``sglang.launch_server`` with ``mode``'s options, in its own process group."""
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="softthink-modes-")) / "server.log"
    args = [sys.executable, "-m", "sglang.launch_server", "--model-path", model_path,
            "--port", str(port), "--dtype", dtype, "--max-total-tokens", str(max_total_tokens),
            *mode.flags]
    return RunningServer(args, port, log_path, mode.env)


# --- the check -----------------------------------------------------------------------

def with_server_args(mode: Mode, server_args: list[str]) -> Mode:
    """``mode`` with SGLang options of the whole run before its own (a mode's own flag,
    given last, wins where both name the same option)."""
    return Mode(mode.name, [*server_args, *mode.flags], dict(mode.env), mode.needs_gpu)


def run_mode(model_path: str, mode: Mode, bodies: list[dict], together: bool,
             server_args: list[str] = ()) -> list[dict]:
    server = start_stock(model_path, with_server_args(mode, list(server_args)))
    try:
        server.wait_healthy()
        return asyncio.run(generate(server.root_url, bodies, together))
    finally:
        server.stop()


def has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", default=None, help="default: the project's default model")
    parser.add_argument("--modes", nargs="*", help="names (or unique prefixes) of the modes to check")
    parser.add_argument("--json", type=Path, help="write the per-request results here")
    parser.add_argument("--server-args", default="",
                        help="SGLang options added to every mode's, e.g. "
                             "'--attention-backend triton --sampling-backend pytorch'")
    args = parser.parse_args(argv)
    model_path = args.model_path or str(default_model_dir())
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prompts = [prompt_ids(tokenizer, q) for q in PROMPTS]
    soft_bodies = [soft_body(i, p) for i, p in enumerate(prompts)]
    plain_bodies = [generate_body(p, None) for p in prompts]
    gpu = has_gpu()
    modes = [m for m in MODES if not args.modes or any(m.name.startswith(n) for n in args.modes)]
    print(f"reference: {REFERENCE.name}, each request alone; {'GPU' if gpu else 'no GPU'}", flush=True)
    server_args = args.server_args.split()
    reference = run_mode(model_path, REFERENCE, soft_bodies + plain_bodies, together=False,
                         server_args=server_args)
    soft_ref, plain_ref = reference[:len(prompts)], reference[len(prompts):]
    report, all_agree = {}, True
    for mode in modes:
        if mode.needs_gpu and not gpu:
            print(f"SKIP  {mode.name}: needs a GPU", flush=True)
            continue
        outputs = run_mode(model_path, mode, soft_bodies, together=True, server_args=server_args)
        problems = {i: output_mismatches(out, ref, plain)
                    for i, (out, ref, plain) in enumerate(zip(outputs, soft_ref, plain_ref))}
        identical = sum(out["output_ids"] == ref["output_ids"] for out, ref in zip(outputs, soft_ref))
        failed = {i: p for i, p in problems.items() if p}
        all_agree &= not failed
        verdict = "PASS" if not failed else "FAIL"
        print(f"{verdict}  {mode.name}: {identical}/{len(outputs)} outputs identical token for token"
              + "".join(f"\n      request {i}: {'; '.join(p[:3])}" for i, p in failed.items()), flush=True)
        report[mode.name] = {"flags": mode.flags, "env": mode.env, "identical": identical,
                             "problems": failed}
    print("verdict:", "every mode agrees with the reference" if all_agree else "SOME MODES DISAGREE")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all_agree else 1


if __name__ == "__main__":
    sys.exit(main())
