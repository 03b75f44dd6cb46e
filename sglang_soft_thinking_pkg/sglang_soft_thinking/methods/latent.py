"""``latent``: LaTER's latent exploration, then explicit thinking (Zhang et al. 2026, "LaTER:
Efficient Test-Time Reasoning via Latent Exploration and Explicit Verification", arXiv
2605.07315; the authors' training-free code: TioeAre/LaTER, ``models.py``). No SGLang import.

Thinking starts latent. A latent step feeds, instead of a token, the step's own last-layer
final-norm hidden state ``h`` mapped back to input space:

    v = h @ W_a,  W_a = (W_out^T W_out + lambda I)^-1 W_out^T W_in,  rescaled to |v| = mean_i |W_in[i]|

(``W_out`` the output head, ``W_in`` the input embedding, ``lambda`` = 1e-5 as the authors';
computed once per model at start-up, hooks/hidden.py). ``projection: "none"`` feeds ``h``
itself, unscaled: Coconut inference, for models trained to read their own hidden states.
Each latent step writes its probe token, the argmax of its logits (the authors' code keeps
these probes as the latent segment's text). The latent segment ends, and thinking goes on
explicitly (sampled tokens, the KV cache kept), at the first step after the first whose

* untempered entropy exceeds ``latent_entropy_threshold`` (the authors' 5 nats), or
* probe ends a step or a sequence (``stop_on_delimiter``): a token whose text, spaces
  removed, holds a blank line, the think-end or an end-of-text marker, or a newline
  written right after a probe that ended with one, or
* the latent steps reach ``max_latent_steps`` (the authors' 50 vectors).

That step writes its probe and feeds it as a token. Cold Stop, the budget and the
think-end string work as for every method. A vector step's trace is its nearest tokens by
cosine, a pass over the vocabulary as large as the logits'; it is computed only when some
row of the step returns its trace (``return_trace``), else the step records its token.

Where the engine departs from the authors' code: the first step writes the argmax of the
prompt's own logits (the engine writes a token for every position; theirs writes nothing
there) and is always latent; the probe window is the last two tokens (theirs decodes the
last ten); after the switch the engine goes on in the same sequence (theirs appends a new
chat message asking to think explicitly, and restarts from a fresh prompt when the
latent entropy stayed under 3 nats); a probe that is the think-end string or end of text
ends thinking or the request as for every method (theirs switches to explicit thinking);
the sampled explicit tokens use the request's thinking settings. A request that fed a
vector cannot be re-prefilled after a retraction: it is aborted with an error (resume.py).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, Field

from sglang_soft_thinking.methods.base import Method, StateColumn, Thought, ThinkingView, one_hot_input, token_where

MODE_LATENT, MODE_EXPLICIT = 0, 1
PROJECTION_NONE = 1  # the index of "none" in LatentParams.projection
# Text that ends the latent segment when a probe writes it (the authors' stop strings).
STOP_STRINGS = ("\n\n", "</think>", "<|endoftext|>", "<|im_end|>")


class LatentParams(BaseModel):
    # How the hidden state becomes an input: the least-squares map W_a, rescaled ("ridge"), or as it is.
    projection: Literal["ridge", "none"] = "ridge"
    # The untempered entropy (nats) above which the latent segment ends.
    latent_entropy_threshold: float = Field(5.0, ge=0)
    # The most vectors fed before thinking turns explicit.
    max_latent_steps: int = Field(50, ge=1)
    # Whether a probe that ends a step (a blank line) or the text ends the latent segment.
    stop_on_delimiter: bool = True


class Latent(Method):
    name = "latent"
    paper = "LaTER, arXiv 2605.07315 (Coconut inference with projection none)"
    Params = LatentParams
    samples_while_thinking = True
    input_kind = "vector"
    state = (StateColumn("mode", torch.int64, MODE_LATENT), StateColumn("fed", torch.int64, 0),
             StateColumn("newline", torch.int64, 0))

    def token_sets(self, tokenizer) -> dict[str, list[int]]:
        stop, starts, ends = [], [], []
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])  # once, at the first request
        for i, text in enumerate(texts):
            text = text.replace(" ", "")
            if any(s in text for s in STOP_STRINGS):
                stop.append(i)
            if text.startswith("\n"):
                starts.append(i)
            if text.endswith("\n"):
                ends.append(i)
        return {"latent_stop": stop, "newline_start": starts, "newline_end": ends}

    def step(self, view: ThinkingView) -> Thought:
        logits = view.logits.float()
        entropy = -(torch.softmax(logits, dim=-1) * torch.log_softmax(logits, dim=-1)).sum(dim=-1)  # [N]
        probe = view.prefix.ids[:, 0]  # the argmax: the sorted prefix's first
        latent = view.state["mode"] == MODE_LATENT
        fed = view.state["fed"]
        ends_step = torch.zeros_like(latent)
        newline_end = torch.zeros_like(latent)
        vocabulary = view.vocabulary
        if vocabulary is not None and "latent_stop" in vocabulary.masks:
            newline_end = vocabulary.contains("newline_end", probe)
            follows = (view.state["newline"] > 0) & vocabulary.contains("newline_start", probe)
            ends_step = (vocabulary.contains("latent_stop", probe) | follows) & (view.setting("stop_on_delimiter") > 0)
        stop = ~view.first & ((entropy > view.setting("latent_entropy_threshold")) | ends_step)
        stop = stop | (fed >= view.setting("max_latent_steps"))
        vector = latent & ~stop
        sampled = view.sample()[:, 0]
        token = torch.where(latent, probe, sampled)

        hidden = view.hidden()  # [N, H]
        geometry = view.geometry
        projected = hidden @ geometry.realign
        projected = projected * (geometry.target_norm / projected.norm(dim=1, keepdim=True).clamp_min(1e-6))
        as_is = (view.setting("projection") == PROJECTION_NONE).unsqueeze(1)
        # Coconut's h enters the first layer as it is, whatever the model scales its embeddings by.
        vector_input = torch.where(as_is, hidden / geometry.after_embedding_scale, projected)  # [N, H]

        if view.traced:
            # The trace of a vector step: its nearest tokens (cosine), as many as the request's max_topk.
            near_ids, near = geometry.nearest(vector_input, view.k_used)
            own = torch.arange(view.k_used, device=near.device).unsqueeze(0) < view.setting("max_topk").unsqueeze(1)
            near_ids, near = torch.where(own, near_ids, 0), torch.where(own, near, 0.0)
            ids, weights = token_where(~vector, token, near_ids, near, view.k_used)
        else:  # no row returns its trace: no pass over the vocabulary; every step records its token
            ids, weights = one_hot_input(token, view.k_used)
        state = {"mode": torch.where(latent & ~vector, MODE_EXPLICIT, view.state["mode"]),
                 "fed": fed + vector.long(), "newline": newline_end.long()}
        return Thought(ids=ids, weights=weights, token=token, discrete=~vector, state=state, vector=vector,
                       vector_input=vector_input)


METHOD = Latent()
