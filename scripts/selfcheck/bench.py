"""The self-check's bench: an embedding of a real model's size, its vocabulary's named
tokens, an output head and the geometry the vector input kind maps with, a batch of rows
of every kind, and logits and hidden states made on the device (no host copy)."""

from __future__ import annotations

import torch

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.geometry import build_geometry
from sglang_soft_thinking.methods import method_id
from sglang_soft_thinking.methods.base import Geometry, Vocabulary
from sglang_soft_thinking.mixing import ShardMixer, VocabShard, decode_inputs
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.table import SoftThinkingTable

K_MAX = 33  # the default --max-topk-limit (32) and a mixture-of-inputs row's extra column
END_ID, NEWLINE_ID = 5, 11  # the think-end token (one token) and the "newline" of first_blend
MATH_EVERY, MATH_ID = 10, 20  # every tenth id is a "maths" token for switch; one of them


def request(seed: int, method: str = "concept", **overrides) -> RequestSettings:
    values = dict(prompt_len=16, temperature=0.7, top_k=C.TOP_K_ALL, top_p=0.95, min_p=0.001, max_topk=10,
                  entropy_threshold=0.01, length_threshold=256, after_temperature=0.6, after_top_k=30,
                  after_top_p=0.95, seed=seed, method=method_id(method), think_end_ids=(END_ID,))
    return RequestSettings.build(**{**values, **overrides})


# Every kind of row, by the name the checks report. None: a plain request among soft ones.
ROW_KINDS: dict[str, dict | None] = {
    "concept_top_k": dict(top_k=40, max_topk=10),
    "concept_gumbel": dict(max_topk=4, noise_kind=C.NOISE_GUMBEL, noise_param=0.5),
    "concept_dirichlet": dict(max_topk=16, noise_kind=C.NOISE_DIRICHLET, noise_param=1.0),
    "plain": None,
    "mixture_of_inputs": dict(method="mixture_of_inputs", beta=0.5, max_topk=6),
    "switch_math_blend": dict(method="switch", explicit_tokens="math", first_blend=0.1, window_size=2,
                              max_switch_count=2, max_topk=8),
    "think_router": dict(method="think_router", tau=0.4, max_topk=5, top_k=40),
    "multiplex_unsorted": dict(method="multiplex", width=3, top_p=1.0),  # whole-vocabulary sample
    "switch_unsorted": dict(method="switch", top_p=1.0, window_size=1, max_topk=3),
    "discrete": dict(method="discrete", top_k=12),
    "selar": dict(method="selar", selar_threshold=0.3, top_k=40),
    "budget": dict(max_thinking_tokens=3, max_topk=2),
    "cold_stop": dict(entropy_threshold=100.0, length_threshold=2, max_topk=3),
    "model_end": dict(max_topk=10),  # its logits force the think-end token at a step
    # The vector input kind: latent steps, then explicit thinking once max_latent_steps
    # vectors were fed (the entropy rule kept out of the way: the bench's logits are random).
    # They return their trace: a vector step computes its nearest tokens only for a trace.
    "latent_ridge": dict(method="latent", max_latent_steps=2, latent_entropy_threshold=100.0, max_topk=6,
                         return_trace=True),
    "latent_none": dict(method="latent", projection="none", max_latent_steps=3, latent_entropy_threshold=100.0,
                        max_topk=4, return_trace=True),
}
# The rows of the vector input kind, and whether each feeds its hidden state as it is.
VECTOR_KINDS = {"latent_ridge": False, "latent_none": True}


def batch_kinds(batch: int) -> list[str]:
    names = list(ROW_KINDS)
    return [names[i % len(names)] for i in range(batch)]


def requests_of(kinds: list[str], seed: int = 100) -> list[RequestSettings | None]:
    out = []
    for i, kind in enumerate(kinds):
        values = ROW_KINDS[kind]
        out.append(None if values is None else request(seed + i, **values))
    return out


class Bench:
    def __init__(self, device: torch.device, vocab: int, hidden: int, dtype: torch.dtype):
        self.device, self.vocab, self.hidden_size, self.dtype = torch.device(device), vocab, hidden, dtype
        if self.device.type == "meta":
            self.weight = torch.empty(vocab, hidden, dtype=dtype, device=self.device)
            self.output_weight = torch.empty(vocab, hidden, dtype=dtype, device=self.device)
            self.geometry = Geometry(realign=torch.empty(hidden, hidden, device=self.device),
                                     target_norm=torch.empty((), device=self.device), rows=self.weight,
                                     inverse_norms=torch.empty(vocab, device=self.device))
        else:  # made on the device: no host copy of a real model's embedding or head
            generator = torch.Generator(device=self.device).manual_seed(0)
            self.weight = (0.02 * torch.randn(vocab, hidden, generator=generator, device=self.device)).to(dtype)
            self.output_weight = (0.02 * torch.randn(vocab, hidden, generator=generator,
                                                     device=self.device)).to(dtype)
            # The input embedding W_in and the output head W_out mapped as at start-up (hooks/hidden.py).
            self.geometry = build_geometry(lambda ids: self.weight[ids], self.output_weight, self.weight, vocab)
        self.embedding = torch.nn.Embedding.from_pretrained(self.weight)
        self.mixer = ShardMixer(self.weight, VocabShard.whole(vocab))
        # The switch and selar methods' named tokens: a maths token set (every tenth id), a newline.
        math = torch.zeros(vocab, dtype=torch.bool, device=self.device)
        math[::MATH_EVERY] = True
        self.vocabulary = Vocabulary(masks={"math": math, "selar_math": math}, tokens={"newline": NEWLINE_ID})

    def table(self, rows: int) -> SoftThinkingTable:
        """A state table with its vector buffers, as the plugin makes it for a model that
        can feed vectors."""
        table = SoftThinkingTable(rows, K_MAX, self.device)
        table.ensure_vectors(self.hidden_size)
        return table

    def logits(self, batch: int, step: int) -> torch.Tensor:
        """[batch, vocab] float32 made on the device itself (a seeded generator there)."""
        if self.device.type == "meta":
            return torch.empty(batch, self.vocab, device=self.device)
        generator = torch.Generator(device=self.device).manual_seed(1000 + step)
        return 3 * torch.randn(batch, self.vocab, generator=generator, device=self.device)

    def hidden(self, batch: int, step: int) -> torch.Tensor:
        """[batch, hidden] float32: a step's final-norm hidden states, made on the device."""
        if self.device.type == "meta":
            return torch.empty(batch, self.hidden_size, device=self.device)
        generator = torch.Generator(device=self.device).manual_seed(2000 + step)
        return torch.randn(batch, self.hidden_size, generator=generator, device=self.device)

    def decode(self, table, rows: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        return decode_inputs(self.mixer, self.embedding(token_ids), table, rows, table.k_max)
