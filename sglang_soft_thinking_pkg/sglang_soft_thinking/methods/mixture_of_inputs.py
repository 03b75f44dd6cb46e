"""``mixture_of_inputs``: Mixture of Inputs (Zhuang et al. 2025, "Text Generation Beyond
Discrete Token Sampling", arXiv 2505.14827). No SGLang import.

A thinking step samples a token as usual and writes it to the text; the next input is not
that token's embedding alone but a blend with the distribution it came from. The paper
treats the distribution as a Dirichlet prior and the sampled token as an observation;
with ``q`` the model's probabilities over its ``N`` most likely tokens (renormalised),
``y`` the one-hot sampled token and ``beta`` the prior's concentration on the observation:

    posterior  w = (q + beta * y) / (1 + beta)
    H_n        = H(q) / ln N                      (normalised entropy, in [0, 1])
    next input e = H_n * sum_i w_i E[i] + (1 - H_n) * E[sampled]

so a confident step (low entropy) feeds nearly the sampled token, an uncertain one the
posterior mixture. This follows the authors' code (``mixinputs``, the "Bayesian mix" of
its vLLM model runner): ``q`` is the softmax of the untempered logits over the top ``N``;
their N is the 20 logprobs vLLM returns, ours the request's ``max_topk``. A token sampled
from outside the top N is the observation all the same (its prior taken as 0), so the
weights always sum to 1; the authors' code then leaves ``beta / (1 + beta)`` of ``H_n``
unassigned.

The blend is itself a weighted sum of embeddings, so it is returned as a concept token
(ids, weights) and fed by the same embedding hook as Soft Thinking's.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, Field

from sglang_soft_thinking.methods.base import Method, Thought, ThinkingView, widen


class MixtureParams(BaseModel):
    # The concentration of the Dirichlet prior on the sampled token: larger keeps more of
    # the sampled token, smaller more of the distribution (the paper's range 0.5-2).
    beta: float = Field(1.0, ge=0)


class MixtureOfInputs(Method):
    name = "mixture_of_inputs"
    paper = "Mixture of Inputs, arXiv 2505.14827"
    Params = MixtureParams
    samples_while_thinking = True

    def width(self, settings) -> int:
        """``max_topk`` candidates and the sampled token, which may lie outside them."""
        return settings.max_topk + 1

    def step(self, view: ThinkingView) -> Thought:
        sampled = view.sample()[:, 0]
        # Every row of the view has max_topk + 1 <= k_used columns.
        num_candidates = max(1, min(view.k_used - 1, view.prefix.ids.shape[1]))
        top_ids = view.prefix.ids[:, :num_candidates]
        ids, weights, _ = mixture_of_inputs(view.logits.gather(1, top_ids), top_ids, view.setting("max_topk"),
                                            sampled, view.setting("beta"))
        return Thought(ids=widen(ids, view.k_used), weights=widen(weights, view.k_used), token=sampled,
                       discrete=torch.zeros_like(sampled, dtype=torch.bool))


def mixture_of_inputs(
    top_logits: torch.Tensor,  # [B, N] untempered logits of each row's N most likely tokens, descending
    top_ids: torch.Tensor,  # [B, N] their ids
    num_candidates: torch.Tensor,  # [B] int, 1..N: the row's N (columns past it are ignored)
    sampled: torch.Tensor,  # [B] the token sampled for the text
    beta: torch.Tensor,  # [B] >= 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The next input of each row as ``(ids, weights)``, [B, N + 1] each, and ``H_n`` [B].

    Column 0 is the sampled token, with its whole weight ``(1 - H_n) + H_n * w_sampled``;
    the other columns are the remaining candidates, heaviest first, with ``H_n * w_i``
    (zero for the sampled one's own column and past ``num_candidates``). Weights sum to 1.
    """
    width = top_logits.shape[1]
    columns = torch.arange(width, device=top_logits.device)
    valid = columns.unsqueeze(0) < num_candidates.unsqueeze(1)
    # q: the prior, the distribution renormalised over the row's candidates.
    log_q = torch.log_softmax(top_logits.float().masked_fill(~valid, float("-inf")), dim=-1)
    q = log_q.exp()
    entropy = -(q * log_q.clamp_min(torch.finfo(log_q.dtype).min)).sum(dim=-1)
    log_n = torch.log(num_candidates.float())
    # One candidate means no uncertainty to spread: H_n = 0 (and ln 1 = 0 must not divide).
    h_n = torch.where(num_candidates > 1, entropy / log_n.clamp_min(math.log(2)), torch.zeros_like(entropy))
    h_n = h_n.clamp(0.0, 1.0)
    observed = (top_ids == sampled.unsqueeze(1)) & valid  # y, at most one column per row
    beta = beta.float()
    # The sampled token's posterior (q_s + beta) / (1 + beta), with q_s = 0 when it lies
    # outside the candidates, and every other candidate's q_i / (1 + beta).
    sampled_posterior = ((q * observed).sum(dim=-1) + beta) / (1 + beta)
    sampled_weight = (1 - h_n) + h_n * sampled_posterior
    others = h_n.unsqueeze(1) * q / (1 + beta.unsqueeze(1))
    others, order = others.masked_fill(observed, 0.0).sort(dim=-1, descending=True)
    ids = torch.cat([sampled.unsqueeze(1), top_ids.gather(1, order)], dim=1)
    weights = torch.cat([sampled_weight.unsqueeze(1), others], dim=1)
    return ids, weights, h_n


METHOD = MixtureOfInputs()
