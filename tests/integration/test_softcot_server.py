"""SoftCoT served: the prompt's placeholder embeddings are projection(assistant hidden states).

One SoftCoT server per module (float32, the default model as assistant and base, a
seeded random projection saved in the checkpoint format). The reference is computed
here with plain transformers from the checkpoint's files: the prompts from its JSON
templates, the projection from its safetensors weights.
"""

from __future__ import annotations

import json

import openai
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForCausalLM

from server_process import TEST_KV_TOKENS, model_path, serving
from softcot_plugin.checkpoint import ModelIdentity, SoftCoTConfig, marker_ids_of, save_checkpoint
from softcot_plugin.projection import SoftCoTProjection
from softcot_plugin.templates import PromptTemplates, choose_markers

N = 4
MAX_TOKENS = 8
THOUGHT_SCALE = 30.0
LOGPROB_TOLERANCE = 2e-3
QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have?"


def write_checkpoint(directory, tokenizer, d_base: int = 576) -> None:
    from transformers import AutoConfig

    hf_config = AutoConfig.from_pretrained(model_path())
    family, markers = choose_markers(tokenizer)
    templates = PromptTemplates.for_task("math", markers, N)
    ids = marker_ids_of(tokenizer, templates)
    base = ModelIdentity(str(model_path()), hf_config.model_type, d_base, hf_config.vocab_size)
    config = SoftCoTConfig(ModelIdentity.of(model_path(), hf_config), base, templates, family,
                           {"assistant": ids, "base": ids})
    torch.manual_seed(1234)
    projection = SoftCoTProjection(hf_config.hidden_size, d_base)
    with torch.no_grad():  # large thoughts, so that they change the greedy text
        projection.linear.weight.mul_(THOUGHT_SCALE)
        projection.linear.bias.mul_(THOUGHT_SCALE)
    save_checkpoint(directory, projection, config)


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory, tokenizer):
    directory = tmp_path_factory.mktemp("softcot-checkpoint")
    write_checkpoint(directory, tokenizer)
    return directory


@pytest.fixture(scope="module")
def softcot_client(checkpoint_dir):
    with serving("--max-total-tokens", str(TEST_KV_TOKENS), "--dtype", "float32",
                 "--softcot-assistant", str(model_path()), "--softcot-projection",
                 str(checkpoint_dir), name="softcot") as proc:
        yield openai.OpenAI(base_url=proc.base_url, api_key="none", max_retries=0, timeout=300)


class Reference:
    """Greedy transformers decoding with the thoughts written into the base prompt."""

    def __init__(self, checkpoint_dir, tokenizer):
        self.tokenizer = tokenizer
        self.saved = json.loads((checkpoint_dir / "softcot.json").read_text())
        self.weights = load_file(str(checkpoint_dir / "projection.safetensors"))
        self.assistant = AutoModel.from_pretrained(model_path(), dtype=torch.float32).eval()
        self.base = AutoModelForCausalLM.from_pretrained(model_path(), dtype=torch.float32).eval()
        markers = self.saved["templates"]["markers"]
        self.block = markers["begin"] + markers["placeholder"] * N + markers["end"]
        self.placeholder_id = tokenizer.convert_tokens_to_ids(markers["placeholder"])

    def chat_ids(self, content: str) -> list[int]:
        return list(self.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=True,
            return_dict=False))

    def base_prompt_ids(self, question: str) -> list[int]:
        instruction = self.saved["templates"]["base_instruction"]
        return self.chat_ids(instruction.format(question=question, thoughts=self.block))

    @torch.no_grad()
    def thoughts(self, question: str) -> torch.Tensor:
        instruction = self.saved["templates"]["assistant_instruction"]
        ids = self.chat_ids(instruction.format(question=question)) + self.tokenizer.encode(
            self.block, add_special_tokens=False)
        hidden = self.assistant(input_ids=torch.tensor([ids])).last_hidden_state[0]  # [T, d]
        at = [i for i, token in enumerate(ids) if token == self.placeholder_id]
        assert len(at) == N
        return hidden[at] @ self.weights["weight"].T + self.weights["bias"]          # [N, d]

    @torch.no_grad()
    def greedy(self, ids: list[int], thoughts: torch.Tensor | None = None) -> tuple[str, list[float]]:
        """The greedy text and each generated token's logprob."""
        embeds = self.base.get_input_embeddings()(torch.tensor([ids]))               # [1, T, d]
        if thoughts is not None:
            at = [i for i, token in enumerate(ids) if token == self.placeholder_id]
            embeds[0, at] = thoughts
        out = self.base.generate(inputs_embeds=embeds, attention_mask=torch.ones(1, len(ids)),
                                 max_new_tokens=MAX_TOKENS, do_sample=False,
                                 output_logits=True, return_dict_in_generate=True)
        tokens = out.sequences[0]
        logprobs = [torch.log_softmax(step[0].float(), -1)[token].item()
                    for step, token in zip(out.logits, tokens)]
        return self.tokenizer.decode(tokens, skip_special_tokens=True), logprobs


@pytest.fixture(scope="module")
def reference(checkpoint_dir, tokenizer):
    return Reference(checkpoint_dir, tokenizer)


def chat(client, question: str = QUESTION, **extra):
    response = client.chat.completions.create(
        model=str(model_path().name), messages=[{"role": "user", "content": question}],
        max_tokens=MAX_TOKENS, temperature=0, logprobs=True, extra_body=extra)
    return response.choices[0]


def assert_matches(choice, expected: tuple[str, list[float]]) -> None:
    text, logprobs = expected
    assert choice.message.content == text
    served = [entry.logprob for entry in choice.logprobs.content]
    assert served == pytest.approx(logprobs, abs=LOGPROB_TOLERANCE)


def test_served_thoughts_equal_the_projected_assistant_states(softcot_client, reference):
    prompt_ids = reference.base_prompt_ids(QUESTION)
    expected = reference.greedy(prompt_ids, reference.thoughts(QUESTION))
    without_thoughts = reference.greedy(prompt_ids)
    assert expected[0] != without_thoughts[0]   # the thoughts matter, so the test can fail
    assert_matches(chat(softcot_client, softcot={"enabled": True}), expected)
    assert_matches(chat(softcot_client, softcot={"num_thought_tokens": N}), expected)
    two = softcot_client.chat.completions.create(
        model=str(model_path().name), messages=[{"role": "user", "content": QUESTION}],
        max_tokens=MAX_TOKENS, temperature=0, n=2, extra_body={"softcot": {}})
    assert [c.message.content for c in two.choices] == [expected[0]] * 2
    # The same prompt tokens without overrides give the answer without thoughts.
    plain = softcot_client.completions.create(model=str(model_path().name), prompt=prompt_ids,
                                              max_tokens=MAX_TOKENS, temperature=0)
    assert plain.choices[0].text == without_thoughts[0]


def test_softcot_off_restores_the_plain_output(softcot_client, reference):
    expected = reference.greedy(reference.chat_ids(QUESTION))
    assert_matches(chat(softcot_client), expected)
    assert_matches(chat(softcot_client, softcot={"enabled": False}), expected)


def test_streamed_softcot_matches(softcot_client, reference):
    text, _ = reference.greedy(reference.base_prompt_ids(QUESTION), reference.thoughts(QUESTION))
    stream = softcot_client.chat.completions.create(
        model=str(model_path().name), messages=[{"role": "user", "content": QUESTION}],
        max_tokens=MAX_TOKENS, temperature=0, stream=True, extra_body={"softcot": {}})
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == text


@pytest.mark.parametrize("method", ["concept", "mixture_of_inputs", "switch", "think_router", "multiplex",
                                    "discrete"])
def test_soft_thinking_combines_with_softcot(softcot_client, reference, method):
    # With max_topk 1 and top_k 1 every method feeds the argmax token alone (a one-token
    # concept token; a mixture over one candidate, entropy 0; a latent or explicit switch
    # or router step alike; draws that are all the argmax; the argmax sampled): greedy
    # decoding, so the soft-thinking answer with thoughts must equal the greedy reference
    # with thoughts.
    text, _ = reference.greedy(reference.base_prompt_ids(QUESTION), reference.thoughts(QUESTION))
    response = softcot_client.chat.completions.create(
        model=str(model_path().name), messages=[{"role": "user", "content": QUESTION}],
        max_tokens=MAX_TOKENS, temperature=0.7, extra_body={
            "softcot": {"enabled": True}, "top_k": 1,
            "soft_thinking": {"method": method, "max_topk": 1, "early_stopping_entropy_threshold": 0,
                              "max_thinking_tokens": 64}})
    choice = response.choices[0]
    # The length limit ends it while thinking, so all of it is reasoning.
    assert choice.soft_thinking["end_reason"] == "length"
    assert choice.soft_thinking["thinking_tokens"] == MAX_TOKENS
    assert choice.message.reasoning_content == text and choice.message.content is None


def test_in_process_evaluation_sampler_matches_the_server(softcot_client, checkpoint_dir):
    from softcot_plugin.evaluate import ServerSampler
    from softcot_plugin.local import LocalSampler

    local = LocalSampler(model_path(), model_path(), checkpoint_dir, "math")
    served = ServerSampler(softcot_client.base_url, "none", None, "math")
    for use_softcot in (False, True):
        assert (local.sample(QUESTION, use_softcot, 1, 0.0, MAX_TOKENS)
                == served.sample(QUESTION, use_softcot, 1, 0.0, MAX_TOKENS))


@pytest.mark.parametrize("softcot, param", [
    ({"num_thought_tokens": N + 1}, "softcot.num_thought_tokens"),
    ({"num_thought_tokens": 0}, "softcot.num_thought_tokens"),
    ({"colour": "red"}, "softcot.colour"),
])
def test_bad_softcot_values_name_the_field(softcot_client, softcot, param):
    with pytest.raises(openai.BadRequestError) as info:
        chat(softcot_client, softcot=softcot)
    assert info.value.body["param"] == param


def test_softcot_needs_a_chat_request(softcot_client):
    with pytest.raises(openai.BadRequestError) as info:
        softcot_client.completions.create(model=str(model_path().name), prompt="Hi", max_tokens=2,
                                          extra_body={"softcot": {"enabled": True}})
    assert info.value.body["param"] == "softcot"


def test_softcot_on_a_server_without_it_is_a_400(openai_client, model_name):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(
            model=model_name, messages=[{"role": "user", "content": QUESTION}], max_tokens=2,
            extra_body={"softcot": {"enabled": True}})
    assert info.value.body["param"] == "softcot"
    assert "softcot" in info.value.body["message"]


def test_wrong_size_checkpoint_stops_the_server_at_start(tmp_path, tokenizer):
    write_checkpoint(tmp_path, tokenizer, d_base=1024)
    with serving("--softcot-assistant", str(model_path()), "--softcot-projection", str(tmp_path),
                 name="softcot-bad", wait=False) as proc:
        assert proc.process.wait(timeout=120) == 2
    assert "hidden size 1024" in proc.log() and "this base model has 576" in proc.log()
