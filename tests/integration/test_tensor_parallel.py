"""Soft thinking under tensor parallelism: two ranks of stock ``launch_server`` + plugin on
this CPU, joined by gloo (SGLang's CPU engine; the plugin builds its groups without GPU
communicators, cpu/tensor_parallel.py), one core each.

Only rank 0 keeps a soft request's per-token records; a retracted soft request is
re-prefilled on both ranks from what rank 0 shares (reprefill.py), and must follow the
same request served without a retraction. A fault met on rank 1 alone costs its request on
both ranks (no rank waits forever in a collective the other skipped), and the server
serves the next request. ``SYNC_TOKEN_IDS_ACROSS_TP=1`` makes SGLang's sampler all-reduce
its tokens, so a fallback of another shape on one rank would stall or break the step.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from scripts.check_engine_modes import (
    METHODS, PROMPTS, SOFT, generate, generate_behind, generate_body, output_mismatches, prompt_ids, soft_body,
)
from server_process import serving

# Faults on rank 1 only: seed -> (fault kind, what rank 1's log names). The error the client
# gets comes from rank 0, which knows only that some rank flagged the request.
ANY_RANK = "on this or another tensor-parallel rank"
RANK1_FAULTS = {
    7101: ("records_host", "record of the step could not be read"),  # read on the host, after the step
    7102: ("admit", "admitting the request failed"),  # before the step
    7104: ("soft_step", "sampling step failed"),  # the batch's soft rows' step, inside the sampler
}
SUBSET_FAULT = 7103  # SGLang's sampler on the plain rows fails on rank 1 while this request shares their batch
FAULTS = ",".join([f"{kind}:{seed}" for seed, (kind, _) in RANK1_FAULTS.items()] + [f"subset:{SUBSET_FAULT}"])


@pytest.fixture(scope="module")
def tp_server():
    env = {"SGLANG_CPU_OMP_THREADS_BIND": "0|1", "SGLANG_TEST_RETRACT": "1", "SYNC_TOKEN_IDS_ACROSS_TP": "1",
           "SOFTTHINK_TEST_FAULT": FAULTS, "SOFTTHINK_TEST_FAULT_RANK": "1"}
    with serving("--dtype", "float32", "--max-total-tokens", "8192", "--tp-size", "2",
                 name="tp2", stock=True, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def prompts(tokenizer):
    """A prompt per method the engine serves under TP: every method of the engine-mode check
    but ``latent``, whose vector inputs are refused under tensor parallelism (tested below)."""
    return [prompt_ids(tokenizer, q) for i, q in enumerate(PROMPTS) if METHODS[i].get("method") != "latent"]


def test_a_method_feeding_vectors_is_refused_under_tp_2_naming_why(tp_server, prompts):
    body = generate_body(prompts[0], {**SOFT, "method": "latent"})
    response = httpx.post(f"{tp_server.root_url}/generate", json=body, timeout=300)
    assert response.status_code != 200 and "tensor parallelism" in response.text, response.text
    plain = httpx.post(f"{tp_server.root_url}/generate", json=generate_body(prompts[0][:8], None), timeout=300)
    assert plain.status_code == 200  # the server serves on


def retractions(outputs: list[dict]) -> int:
    return sum(out["meta_info"].get("num_retractions", 0) for out in outputs)


def test_a_retracted_soft_request_under_tp_2_follows_its_unretracted_run(tp_server, prompts):
    """Six soft requests (every method) at once beside four plain ones, retracted every few
    steps, against each soft request alone on the same server (a lone request is never
    retracted): equal kinds, concept tokens within the engine-mode tolerances. The plain
    requests start first, so every retraction takes a soft request (``generate_behind``)."""
    soft = [soft_body(i, p) for i, p in enumerate(prompts)]
    plain = [generate_body(p[:8], None, max_new_tokens=40) for p in prompts[:4]]
    together = asyncio.run(generate_behind(tp_server.root_url, plain, soft))
    alone = asyncio.run(generate(tp_server.root_url, soft, together=False))
    assert retractions(alone) == 0
    assert retractions(together) >= 3, "soft requests were retracted, some more than once"
    problems = {i: output_mismatches(out, ref) for i, (out, ref) in enumerate(zip(together, alone))}
    assert not any(problems.values()), {i: p[:4] for i, p in problems.items() if p}


async def _post(client: httpx.AsyncClient, body: dict) -> tuple[int, dict | str]:
    response = await client.post("/generate", json=body)
    return response.status_code, response.json() if response.status_code == 200 else response.text


def _seeded(body: dict, seed: int) -> dict:
    body["sampling_params"]["sampling_seed"] = seed
    return body


def test_a_fault_on_one_rank_costs_its_request_on_both_and_the_server_goes_on(tp_server, prompts):
    async def scenario():
        async with httpx.AsyncClient(base_url=tp_server.root_url, timeout=300) as client:
            rounds = []
            for seed in [*RANK1_FAULTS, SUBSET_FAULT]:
                faulty = _seeded(soft_body(0, prompts[0]), seed)
                rounds.append(await asyncio.gather(_post(client, faulty),
                                                   _post(client, generate_body(prompts[1], None))))
            return rounds, await _post(client, soft_body(2, prompts[2]))

    rounds, again = asyncio.run(scenario())
    log = tp_server.log()
    for ((status, text), (plain_status, _)), (_, what) in zip(rounds, RANK1_FAULTS.values()):
        assert status == 500 and "soft thinking:" in text and ANY_RANK in text, (status, text)
        assert plain_status == 200  # the plain request beside it is served
        assert what in log
    (soft_status, soft_out), (plain_status, plain_text) = rounds[-1]
    # SGLang's sampler failed on rank 1 for the plain row: that row is aborted on both ranks,
    # the soft request beside it is served.
    assert soft_status == 200 and soft_out["meta_info"]["finish_reason"]["type"] == "length", soft_out
    assert plain_status == 500 and ANY_RANK in plain_text, (plain_status, plain_text)
    assert "SGLang's sampler failed on its row" in log
    assert again[0] == 200 and again[1]["meta_info"]["finish_reason"]["type"] == "length", again
