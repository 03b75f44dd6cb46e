"""SGLang's own server options through ``python -m server``: listed, passed to the engine, in force.

One server runs with ``--chunked-prefill-size 64 --context-length 1024`` for the module;
a data-parallel one (``--dp-size 2``) is started by its own test. Both leave every other
option to SGLang and the plugin (the plugin's CPU defaults must still apply).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys

import httpx
import openai
import pytest

from server_process import REPO_ROOT, free_port, model_path, serving

SOFT = {"max_topk": 5, "min_p": 0.001, "max_thinking_tokens": 8,
        "early_stopping_entropy_threshold": 0, "return_trace": True}


def start_server(*flags: str, kv_tokens: int = 4096):
    return serving("--max-total-tokens", str(kv_tokens), *flags, name="sglang-options")


def server_info(proc) -> dict:
    response = httpx.get(f"http://127.0.0.1:{proc.port}/server_info", timeout=30)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def chunked_server():
    with start_server("--chunked-prefill-size", "64", "--context-length", "1024") as proc:
        yield proc


@pytest.fixture(scope="module")
def client(chunked_server):
    return openai.OpenAI(base_url=chunked_server.base_url, api_key="unused", max_retries=0,
                         timeout=300)


def test_help_lists_every_sglang_option_and_which_of_ours_win():
    from sglang.srt.server_args import ServerArgs

    sglang_parser = argparse.ArgumentParser(add_help=False)
    ServerArgs.add_cli_args(sglang_parser)
    result = subprocess.run([sys.executable, "-m", "server", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    listed = set(re.findall(r"--[a-z0-9][a-z0-9-]*", result.stdout))
    sglang_flags = {flag for action in sglang_parser._actions for flag in action.option_strings
                    if action.help != argparse.SUPPRESS}  # SGLang's hidden ones stay hidden
    assert len(sglang_flags) > 300
    assert sglang_flags <= listed, sorted(sglang_flags - listed)[:20]
    assert "SUPPRESS" not in result.stdout
    epilog = " ".join(result.stdout.split("ours wins:")[1].split())
    for shadowed in ("--model-path", "--port", "--host", "--max-total-tokens", "--dtype"):
        assert shadowed in epilog


def test_the_engine_runs_with_the_options_given_and_the_cpu_defaults(chunked_server):
    info = server_info(chunked_server)
    assert info["chunked_prefill_size"] == 64
    assert info["context_length"] == 1024 and info["context_len"] == 1024
    assert info["max_total_tokens"] == 4096  # our flag
    assert info["port"] == chunked_server.port  # our HTTP server's, not SGLang's 30000
    assert info["soft_thinking"] == {"enabled": True, "reason": None}  # the schedulers' report
    if info["device"] == "cpu":  # options left unset keep the plugin's CPU choices
        assert info["attention_backend"] == "torch_native" and info["sleep_on_idle"]


def test_a_prompt_longer_than_the_context_length_is_a_400_naming_it(client, tokenizer):
    model = client.models.list().data[0]
    assert model.model_extra["max_model_len"] == 1024
    prompt = "apple " * 1100
    assert len(tokenizer(prompt).input_ids) > 1024
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model=model.id, prompt=prompt, max_tokens=4)
    assert error.value.status_code == 400
    assert "context length of 1024" in error.value.body["message"]
    with pytest.raises(openai.BadRequestError, match="context length of 1024"):
        client.chat.completions.create(model=model.id, max_tokens=4,
                                       messages=[{"role": "user", "content": prompt}])


def test_a_long_prompt_is_prefilled_in_chunks_of_the_size_given(chunked_server, client):
    prompt = " ".join(f"Item {i}: the quick brown fox." for i in range(30))  # ~290 tokens
    before = chunked_server.log().count("Prefill batch")
    response = client.completions.create(model=client.models.list().data[0].id, prompt=prompt,
                                         max_tokens=4, extra_body={"soft_thinking": SOFT})
    assert response.choices[0].text and response.usage.completion_tokens_details.reasoning_tokens
    chunks = [int(n) for n in re.findall(r"Prefill batch.*?#new-token: (\d+)",
                                         chunked_server.log())[before:]]
    assert len(chunks) >= 4 and max(chunks) == 64, chunks


def test_an_option_soft_thinking_cannot_run_with_stops_the_start_with_a_clear_message():
    args = [sys.executable, "-m", "server", "--port", str(free_port()), "--model-path",
            str(model_path()), "--max-total-tokens", "4096", "--enable-torch-compile"]
    result = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "soft thinking cannot run with these SGLang options" in result.stderr
    assert "--enable-torch-compile" in result.stderr
    assert "Traceback" not in result.stderr


def test_tensor_parallelism_on_the_cpu_stand_in_stops_the_start_naming_what_serves_it():
    # On the sgl_kernel stand-in, tensor parallelism is served by stock launch_server with
    # the plugin (test_tensor_parallel.py); this server says so and stops before any rank.
    from sglang_soft_thinking.cpu import boot

    if not boot.is_active():
        pytest.skip("a machine with CUDA or real CPU kernels can run tensor parallelism")
    args = [sys.executable, "-m", "server", "--port", str(free_port()), "--model-path",
            str(model_path()), "--max-total-tokens", "4096", "--tp-size", "2"]
    result = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "--tp-size 2: tensor parallelism on a CPU is served by stock" in result.stderr
    assert "--dp-size" in result.stderr and "Traceback" not in result.stderr


def test_data_parallel_server_serves_soft_and_plain_requests_on_both_ranks():
    """``--dp-size 2``: two schedulers, each with its own soft-thinking state. On a CPU with
    one NUMA node the server gives each rank its own cores (SGLang alone refuses to)."""
    with start_server("--dp-size", "2", kv_tokens=8192) as proc:
        outputs = asyncio.run(_soft_and_plain_at_once(proc.base_url, count=4))
        log = proc.log()
    soft, plain = outputs[:4], outputs[4:]
    for response in soft:
        summary = response.model_dump()["choices"][0]["soft_thinking"]
        assert summary["trace"] and all(step["ids"] and step["weights"]
                                        for step in summary["trace"])
        assert response.usage.completion_tokens_details.reasoning_tokens > 0
    for response in plain:
        assert response.model_dump()["choices"][0].get("soft_thinking") is None
        assert response.choices[0].message.content
    ranks = set(re.findall(r"DP(\d)\] Prefill batch", log))
    assert ranks == {"0", "1"}, "both data-parallel schedulers served requests"


async def _soft_and_plain_at_once(base_url: str, count: int) -> list:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=300)
    model = (await client.models.list()).data[0].id
    messages = [{"role": "user", "content": "Tom has 3 apples and buys 5 more. How many?"}]
    soft = [client.chat.completions.create(model=model, messages=messages, max_tokens=16,
                                           temperature=0.7, seed=i,
                                           extra_body={"soft_thinking": SOFT})
            for i in range(count)]
    plain = [client.chat.completions.create(model=model, messages=messages, max_tokens=8,
                                            seed=i)
             for i in range(count)]
    return await asyncio.gather(*soft, *plain)
