"""Soft thinking stays right in the engine modes SGLang runs in (stock ``launch_server`` + plugin).

Each mode's server gets the same soft-thinking requests (float32, noise off, greedy
answer; the three thinking methods in turn, seeded) all at once, with plain requests
beside them, and each soft request must agree with the same request sent alone to a server in the default mode: equal record kinds,
concept tokens within the tolerances of ``scripts/check_engine_modes.py``, and an
output that differs from plain greedy decoding of its prompt (so a mode that stopped
feeding concept tokens fails). Each special server is started once for this module.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest

from scripts.check_engine_modes import (
    PROMPTS, SOFT, Mode, generate, generate_behind, generate_body, output_mismatches, prompt_ids, soft_body,
)
from server_process import REPO_ROOT, ServerProcess, model_path, serving

LONG_PROMPT = " ".join(f"Item {i}: the quick brown fox jumps over the lazy dog." for i in range(20))


def start(mode: Mode, max_total_tokens: int = 16384):
    """Stock ``sglang.launch_server`` in float32 with ``mode``'s options and environment."""
    return serving("--dtype", "float32", "--max-total-tokens", str(max_total_tokens), *mode.flags,
                   name="modes", stock=True, env=mode.env)


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return [prompt_ids(tokenizer, q) for q in PROMPTS]


@pytest.fixture(scope="module")
def default_server(stock_server):
    """SGLang's default mode on this CPU: the session's stock server (float32, 16384 tokens)."""
    return stock_server


@pytest.fixture(scope="module")
def alone(default_server, prompts):
    """Each soft request, and the plain greedy request of its prompt, sent alone."""
    bodies = [soft_body(i, p) for i, p in enumerate(prompts)] + [generate_body(p, None) for p in prompts]
    outputs = asyncio.run(generate(default_server.root_url, bodies, together=False))
    return outputs[:len(prompts)], outputs[len(prompts):]


def run_together(server: ServerProcess, prompts, extra: list[dict] = ()) -> list[dict]:
    """The soft requests (and ``extra``) at once, beside plain ones; returns the soft outputs.

    The plain requests run first and have shorter prompts: SGLang retracts the requests
    with the fewest outputs and, among those, the longest prompts first, so a retraction
    always takes a soft request."""
    plain = [generate_body(p[:8], None, max_new_tokens=40) for p in prompts[:4]]
    bodies = [soft_body(i, p) for i, p in enumerate(prompts)] + list(extra)
    return asyncio.run(generate_behind(server.root_url, plain, bodies))[:len(prompts)]


def assert_agree(outputs: list[dict], alone) -> None:
    soft_alone, plain_alone = alone
    problems = {i: output_mismatches(out, ref, plain)
                for i, (out, ref, plain) in enumerate(zip(outputs, soft_alone, plain_alone))}
    assert not any(problems.values()), {i: p[:4] for i, p in problems.items() if p}


def retractions(outputs: list[dict]) -> int:
    return sum(out["meta_info"].get("num_retractions", 0) for out in outputs)


def test_prefix_cache_keeps_the_prompt_and_never_the_soft_positions(default_server, prompts):
    prompt = prompts[0]

    def cached_tokens_after(soft: dict | None) -> int:
        first = asyncio.run(generate(default_server.root_url, [generate_body(prompt, soft)], False))[0]
        follow_up = generate_body(prompt + first["output_ids"], None, max_new_tokens=2)
        second = asyncio.run(generate(default_server.root_url, [follow_up], False))[0]
        return second["meta_info"]["cached_tokens"]

    assert cached_tokens_after(SOFT) <= len(prompt), "KV of concept-token positions was served"
    assert cached_tokens_after(SOFT) >= len(prompt) - 1, "the prompt itself stays cacheable"
    assert cached_tokens_after(None) > len(prompt) + 8, "a plain request's output is cached"


def test_overlap_scheduler_with_a_grammar_request_in_the_batch(default_server, prompts, alone):
    """The default mode runs the overlap scheduler; a grammar request makes SGLang sample
    the batch after the forward returns (delayed sampling)."""
    regex = generate_body(prompts[1], None, max_new_tokens=12)
    regex["sampling_params"]["regex"] = "[0-9]{12}"
    outputs = run_together(default_server, prompts, [regex])
    assert_agree(outputs, alone)


def test_retraction_every_few_steps_with_the_radix_cache(prompts, alone):
    with start(Mode("retract", env={"SGLANG_TEST_RETRACT": "1"})) as server:
        outputs = run_together(server, prompts)
    assert retractions(outputs) >= 3, "soft requests were retracted, some more than once"
    assert_agree(outputs, alone)


def test_retraction_never_resumes_from_a_plain_twins_cached_kv(prompts, alone):
    """A plain greedy request of the same prompt leaves the soft request's first output
    token in the radix tree (noise off, the first written token is the argmax), computed
    from that token's own embedding. A retracted soft request re-matched on its prompt
    plus output must not take that KV for a position it fed a concept token."""
    with start(Mode("retract after plain twins", env={"SGLANG_TEST_RETRACT": "1"})) as server:
        twins = [generate_body(p, None) for p in prompts]
        asyncio.run(generate(server.root_url, twins, together=False))
        outputs = run_together(server, prompts)
    assert retractions(outputs) >= 3, "soft requests were retracted, some more than once"
    assert_agree(outputs, alone)


def test_retraction_with_a_re_prefill_split_into_chunks(prompts):
    """A retracted request's re-prefill of prompt + output runs in prefill chunks, and a
    chunk after the first starts past its prompt, on KV the chunks before it rebuilt from
    the request's recorded inputs.

    SGLang first retracts the request with the fewest outputs and the longest prompt, here
    prompt 0 (48 tokens, when every request has about five outputs); 25-token chunks cut
    its re-prefill at 50, past the prompt, and a retraction every 8 forwards leaves time to
    decode between them. Radix cache off and on (on, the re-prefill starts from the cached
    prompt). The reference is the same server with each request alone: a lone decoding
    request is never retracted, and its prefill rounds alike in the same chunks. (A
    re-prefill that fed no concept token would not follow the reference's trace.)"""
    soft = [soft_body(i, p) for i, p in enumerate(prompts)]
    chunked = ["--chunked-prefill-size", "25"]
    retract = {"SGLANG_TEST_RETRACT": "1", "SGLANG_TEST_RETRACT_INTERVAL": "8"}
    with start(Mode("chunked re-prefill, no radix cache", [*chunked, "--disable-radix-cache"], retract)) as server:
        without_radix = run_together(server, prompts)
        reference = asyncio.run(generate(server.root_url, soft, together=False))
    with start(Mode("chunked re-prefill, radix cache", chunked, retract)) as server:
        with_radix = run_together(server, prompts)
    assert retractions(reference) == 0
    for outputs in (without_radix, with_radix):
        assert retractions(outputs) >= 3, "soft requests were retracted, some more than once"
        assert_agree(outputs, (reference, [None] * len(prompts)))


def test_retraction_under_memory_pressure_without_radix_cache_or_overlap(default_server, prompts, alone):
    """A KV pool too small for the requests SGLang admits on its estimate of their length."""
    bodies = [soft_body(i, p, max_new_tokens=48, ignore_eos=False) for i, p in enumerate(prompts)]
    expected = asyncio.run(generate(default_server.root_url, bodies, together=False))
    with start(Mode("pressure", ["--disable-radix-cache", "--disable-overlap-schedule",
                                 "--schedule-conservativeness", "0.1"]), max_total_tokens=220) as server:
        outputs = asyncio.run(generate(server.root_url, bodies, together=True))
    assert retractions(outputs) > 0, "the KV pool was small enough to force retractions"
    assert_agree(outputs, (expected, alone[1]))


def test_mixed_chunked_prefill_with_prompts_arriving_while_thinking(tokenizer, prompts, alone):
    mixed_mode = Mode("mixed", ["--enable-mixed-chunk", "--chunked-prefill-size", "64"],
                      env={"SGLANG_ENABLE_DELAY_SAMPLE": "1"})
    long_bodies = [generate_body(list(tokenizer.encode(f"{i} {LONG_PROMPT}")), None, 8) for i in range(4)]

    async def soft_then_long_prompts():
        soft_bodies = [soft_body(i, p) for i, p in enumerate(prompts)]
        soft = asyncio.ensure_future(generate(server.root_url, soft_bodies, True))
        await asyncio.sleep(1.0)  # the soft requests are decoding by now
        late = await generate(server.root_url, long_bodies, True)
        return await soft, late

    with start(mixed_mode) as server:
        outputs, late = asyncio.run(soft_then_long_prompts())
        log = server.log()
    mixed = [int(n) for n in re.findall(r"Prefill batch.*#running-req: (\d+)", log)]
    assert any(n > 0 for n in mixed), "some prefill chunks ran mixed with decoding requests"
    assert all(out["meta_info"]["finish_reason"]["type"] == "length" for out in late)
    assert_agree(outputs, alone)


def test_data_parallel_schedulers_each_keep_their_own_state(prompts, alone):
    # On a CPU SGLang wants each data-parallel rank bound to its own cores.
    with start(Mode("dp", ["--dp-size", "2"], env={"SGLANG_CPU_OMP_THREADS_BIND": "0|1"}),
               max_total_tokens=8192) as server:
        outputs = run_together(server, prompts)
    assert {out["meta_info"]["dp_rank"] for out in outputs} == {0, 1}
    assert_agree(outputs, alone)


REFUSED_AT_START = [
    (["--speculative-algorithm", "NGRAM"], "--speculative-algorithm"),
    (["--pp-size", "2"], "--pp-size"),
    (["--num-continuous-decode-steps", "2"], "--num-continuous-decode-steps"),
    (["--enable-lora"], "--enable-lora"),
    (["--attn-cp-size", "2"], "--attn-cp-size"),
    (["--enable-prefill-cp"], "--enable-prefill-cp"),
    (["--enable-symm-mem"], "--enable-symm-mem"),
]


def test_unsupported_modes_are_refused_at_start_up():
    """Stock launch_server with each option (all started at once): each stops with our
    message naming the option, before SGLang's own checks of it and before any rank loads
    the model."""
    runs = [subprocess.Popen([sys.executable, "-m", "sglang.launch_server", "--model-path", str(model_path()),
                              "--max-total-tokens", "4096", "--port", "1", *flags],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for flags, _ in REFUSED_AT_START]
    for run, (flags, option) in zip(runs, REFUSED_AT_START):
        output, _ = run.communicate(timeout=300)
        assert run.returncode != 0, flags
        assert "soft thinking cannot run with these SGLang options" in output, output[-2000:]
        assert option in output, output[-2000:]
        assert "Load weight begin" not in output, output[-2000:]


@pytest.mark.parametrize("fields", [
    {"speculative_algorithm": "EAGLE"}, {"disaggregation_mode": "decode"}, {"pp_size": 2},
    {"enable_dp_attention": True}, {"enable_two_batch_overlap": True}, {"enable_pdmux": True},
    {"dllm_algorithm": "LowConfidence"}, {"num_continuous_decode_steps": 4},
    {"enable_torch_compile": True}, {"skip_tokenizer_init": True}, {"enable_lora": True},
    {"attn_cp_size": 2}, {"enable_prefill_cp": True}, {"dcp_size": 2}, {"enable_symm_mem": True},
])
def test_every_refused_option_is_named(fields):
    from sglang.srt.server_args import ServerArgs
    from sglang_soft_thinking.hooks.server_args import REFUSED, refused_options

    assert refused_options(ServerArgs(model_path="x")) == []
    problems = refused_options(ServerArgs(model_path="x", **fields))
    option = "--" + next(iter(fields)).replace("_", "-")
    assert len(problems) == 1 and problems[0].startswith(option) and option in REFUSED


def test_the_plugin_can_be_switched_off_for_such_modes():
    """With SOFTTHINK_DISABLE=1 the same option passes the plugin (SGLang may still refuse it)."""
    args = [sys.executable, "-c",
            "import os; os.environ['SOFTTHINK_DISABLE'] = '1'\n"
            "from sglang.srt.plugins import load_plugins\n"
            "load_plugins()\n"
            "from sglang.srt.plugins.hook_registry import HookRegistry\n"
            "print(sorted(HookRegistry._hooks))"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resolve_once" in result.stdout and "Sampler.forward" not in result.stdout


def test_the_check_script_runs_on_this_machine():
    """``scripts/check_engine_modes.py`` is the GPU check; its CPU modes also run here."""
    result = subprocess.run([sys.executable, "scripts/check_engine_modes.py", "--modes", "overlap, no"],
                            capture_output=True, text=True, timeout=900,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "PASS  overlap, no CUDA graphs" in result.stdout
    assert "no GPU" in result.stdout and "verdict: every mode agrees" in result.stdout

