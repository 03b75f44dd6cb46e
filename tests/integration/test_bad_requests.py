"""Every bad request gets a 4xx whose message names the field, and the server keeps serving."""

from __future__ import annotations

import httpx
import pytest

HELLO = [{"role": "user", "content": "Hello"}]
SOFT = {"max_topk": 5}

# (name, route, JSON body or raw bytes, status, the field the error must name)
CASES = [
    ("malformed_json", "chat/completions", b'{"messages": [', 400, "JSON"),
    ("missing_messages", "chat/completions", {"max_tokens": 4}, 400, "messages"),
    ("empty_messages", "chat/completions", {"messages": []}, 400, "messages"),
    ("bad_role", "chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, 400,
     "messages.0.role"),
    ("max_tokens_beyond_context", "chat/completions",
     {"messages": HELLO, "max_tokens": 1_000_000}, 400, "max_tokens"),
    ("max_completion_tokens_beyond_context", "chat/completions",
     {"messages": HELLO, "max_completion_tokens": 1_000_000}, 400, "max_completion_tokens"),
    ("wrong_model", "chat/completions", {"model": "no-such-model", "messages": HELLO}, 404,
     "model"),
    ("negative_temperature", "chat/completions", {"messages": HELLO, "temperature": -1}, 400,
     "temperature"),
    ("top_p_zero", "chat/completions", {"messages": HELLO, "top_p": 0}, 400, "top_p"),
    ("soft_max_topk_zero", "chat/completions",
     {"messages": HELLO, "soft_thinking": {"max_topk": 0}}, 400, "soft_thinking.max_topk"),
    ("soft_unknown_field", "chat/completions",
     {"messages": HELLO, "soft_thinking": {"max_top_k": 3}}, 400, "soft_thinking.max_top_k"),
    ("soft_bad_noise", "chat/completions",
     {"messages": HELLO, "soft_thinking": {"noise": {"type": "gumbel", "temperature": -1}}},
     400, "soft_thinking.noise"),
    ("soft_temperature_zero", "chat/completions",
     {"messages": HELLO, "temperature": 0, "soft_thinking": SOFT}, 400, "temperature"),
    ("flat_max_topk_zero", "chat/completions",
     {"messages": HELLO, "enable_soft_thinking": True, "max_topk": 0}, 400, "max_topk"),
    ("flat_and_nested", "chat/completions",
     {"messages": HELLO, "enable_soft_thinking": True, "soft_thinking": SOFT}, 400,
     "soft_thinking"),
    ("soft_text_completion", "completions",
     {"prompt": "Hi", "temperature": 0, "soft_thinking": SOFT}, 400, "temperature"),
    ("missing_prompt", "completions", {"max_tokens": 4}, 400, "prompt"),
    ("prompt_beyond_context", "completions", {"prompt": "hello " * 9000, "max_tokens": 1}, 400,
     "prompt"),
    ("too_many_choices", "completions", {"prompt": "Hi", "n": 1000}, 400, "n"),
]


def post(server, route: str, body) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    return httpx.post(f"{server.base_url}/{route}", headers=headers, timeout=120, **kwargs)


@pytest.mark.parametrize("name,route,body,status,field", CASES, ids=[c[0] for c in CASES])
def test_bad_request_is_named_and_server_keeps_serving(server, name, route, body, status, field):
    response = post(server, route, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert field in error["message"]
    good = post(server, "chat/completions", {"messages": HELLO, "max_tokens": 1})
    assert good.status_code == 200, good.text


def test_openai_client_sees_typed_errors(openai_client, model_name):
    import openai

    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model="nope", messages=HELLO, max_tokens=1)
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model=model_name, messages=HELLO, max_tokens=1, temperature=0,
            extra_body={"soft_thinking": SOFT})
    assert "temperature" in str(caught.value)
