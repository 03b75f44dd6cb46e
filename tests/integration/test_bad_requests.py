"""Every bad request gets a 4xx whose message names the field, and the server keeps serving."""

from __future__ import annotations

import httpx
import pytest

HELLO = [{"role": "user", "content": "Hello"}]
SOFT = {"max_topk": 5}
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024  # the server's --max-request-bytes default

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
    ("soft_unknown_method", "chat/completions",
     {"messages": HELLO, "soft_thinking": {"method": "no_such_method"}}, 400, "soft_thinking.method"),
    ("soft_noise_with_mixture_of_inputs", "chat/completions",
     {"messages": HELLO, "soft_thinking": {"method": "mixture_of_inputs", "noise": {"type": "gumbel"}}},
     400, "soft_thinking.noise"),
    ("soft_temperature_zero", "chat/completions",
     {"messages": HELLO, "temperature": 0, "soft_thinking": SOFT}, 400, "temperature"),
    ("flat_max_topk_zero", "chat/completions",
     {"messages": HELLO, "enable_soft_thinking": True, "max_topk": 0}, 400, "max_topk"),
    ("flat_and_nested", "chat/completions",
     {"messages": HELLO, "enable_soft_thinking": True, "soft_thinking": SOFT}, 400,
     "soft_thinking"),
    ("soft_in_body_and_template_kwargs", "chat/completions",
     {"messages": HELLO, "soft_thinking": SOFT, "chat_template_kwargs": {"soft_thinking": SOFT}},
     400, "soft_thinking"),
    ("soft_in_template_kwargs_bad", "chat/completions",
     {"messages": HELLO, "chat_template_kwargs": {"soft_thinking": {"max_topk": 0}}}, 400,
     "soft_thinking.max_topk"),
    ("soft_text_completion", "completions",
     {"prompt": "Hi", "temperature": 0, "soft_thinking": SOFT}, 400, "temperature"),
    ("missing_prompt", "completions", {"max_tokens": 4}, 400, "prompt"),
    ("prompt_beyond_context", "completions", {"prompt": "hello " * 9000, "max_tokens": 1}, 400,
     "prompt"),
    ("too_many_choices", "completions", {"prompt": "Hi", "n": 1000}, 400, "n"),
    # Wrong types.
    ("max_tokens_not_a_number", "chat/completions", {"messages": HELLO, "max_tokens": "ten"},
     400, "max_tokens"),
    ("temperature_not_a_number", "chat/completions", {"messages": HELLO, "temperature": "hot"},
     400, "temperature"),
    ("messages_not_a_list", "chat/completions", {"messages": "Hello"}, 400, "messages"),
    ("content_not_text", "chat/completions", {"messages": [{"role": "user", "content": 7}]},
     400, "messages.0.content"),
    ("n_fractional", "chat/completions", {"messages": HELLO, "n": 1.5}, 400, "n"),
    ("stream_not_a_bool", "chat/completions", {"messages": HELLO, "stream": "often"}, 400,
     "stream"),
    ("stop_not_text", "chat/completions", {"messages": HELLO, "stop": 5}, 400, "stop"),
    ("body_not_an_object", "chat/completions", [HELLO], 400, "dictionary"),
    ("soft_thinking_not_an_object", "chat/completions",
     {"messages": HELLO, "soft_thinking": "on"}, 400, "soft_thinking"),
    # Out-of-range values.
    ("max_tokens_zero", "chat/completions", {"messages": HELLO, "max_tokens": 0}, 400,
     "max_tokens"),
    ("n_zero", "chat/completions", {"messages": HELLO, "n": 0}, 400, "n"),
    ("top_p_above_one", "chat/completions", {"messages": HELLO, "top_p": 1.5}, 400, "top_p"),
    ("top_k_zero", "chat/completions", {"messages": HELLO, "top_k": 0}, 400, "top_k"),
    ("min_p_above_one", "chat/completions", {"messages": HELLO, "min_p": 2}, 400, "min_p"),
    ("presence_penalty_too_big", "chat/completions",
     {"messages": HELLO, "presence_penalty": 3}, 400, "presence_penalty"),
    ("top_logprobs_too_many", "chat/completions",
     {"messages": HELLO, "logprobs": True, "top_logprobs": 21}, 400, "top_logprobs"),
    ("top_logprobs_without_logprobs", "chat/completions",
     {"messages": HELLO, "top_logprobs": 2}, 400, "top_logprobs"),
    ("completion_logprobs_too_many", "completions", {"prompt": "Hi", "logprobs": 21}, 400,
     "logprobs"),
    ("logprobs_with_soft_thinking", "chat/completions",
     {"messages": HELLO, "logprobs": True, "soft_thinking": SOFT}, 400, "logprobs"),
    ("soft_min_p_above_one", "chat/completions",
     {"messages": HELLO, "soft_thinking": {"min_p": 1.5}}, 400, "soft_thinking.min_p"),
    ("soft_after_thinking_unknown_field", "chat/completions",
     {"messages": HELLO, "soft_thinking": {"after_thinking": {"temp": 0.5}}}, 400,
     "soft_thinking.after_thinking.temp"),
    ("empty_prompt", "completions", {"prompt": ""}, 400, "prompt"),
    ("echo_unsupported", "completions", {"prompt": "Hi", "echo": True}, 400, "echo"),
    # Bodies that are not UTF-8 JSON, or too big (one byte over the default limit).
    ("non_utf8_body", "chat/completions", b'{"messages": [{"role": "user", "content": "\xff"}]}',
     400, "JSON"),
    ("oversized_body", "chat/completions",
     b'{"messages": [], "pad": "' + b"x" * DEFAULT_MAX_REQUEST_BYTES + b'"}', 413, "limit"),
]


def post(server, route: str, body) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    kwargs = {"json": body} if isinstance(body, (dict, list)) else {"content": body}
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


def test_oversized_chunked_body_is_refused(server):
    """A body without Content-Length is counted as it arrives."""
    pieces = (b"x" * 65536 for _ in range(DEFAULT_MAX_REQUEST_BYTES // 65536 + 1))
    response = post(server, "chat/completions", pieces)
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "request_too_large"
    assert post(server, "chat/completions", {"messages": HELLO, "max_tokens": 1}).status_code == 200


AUTH_CASES = {"missing": {}, "wrong_key": {"Authorization": "Bearer not-the-key"},
              "wrong_scheme": {"Authorization": "Basic dGVzdC1rZXk="}}


@pytest.mark.parametrize("route", ["GET /v1/models", "POST /v1/chat/completions",
                                   "POST /v1/completions", "GET /metrics"])
@pytest.mark.parametrize("case", list(AUTH_CASES))
def test_every_route_but_health_needs_the_key(server, route, case):
    method, path = route.split()
    root = server.base_url.removesuffix("/v1")
    response = httpx.request(method, root + path, headers=AUTH_CASES[case],
                             json={"messages": HELLO, "prompt": "Hi", "max_tokens": 1})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert httpx.get(root + "/health").status_code == 200
    assert post(server, "chat/completions", {"messages": HELLO, "max_tokens": 1}).status_code == 200


def test_openai_client_sees_typed_errors(openai_client, model_name):
    import openai

    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model="nope", messages=HELLO, max_tokens=1)
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model=model_name, messages=HELLO, max_tokens=1, temperature=0,
            extra_body={"soft_thinking": SOFT})
    assert "temperature" in str(caught.value)
