"""LaTER's latent exploration (arXiv 2605.07315), written out plainly with transformers.

The yardstick for the engine's ``latent`` method: batch size 1, float32, one position per
forward pass through a real KV cache. Computed here from the model's weights, in float64:

    W_a = (W_out^T W_out + 1e-5 I)^-1 W_out^T W_in,  target = mean_i |W_in[i]|

Per thinking step, from the last position's logits ``z`` and last-layer hidden state ``h``
(transformers' last ``hidden_states`` entry, after the final norm: checked against the
logits); ``W_in`` holds the input rows as the model reads them (``token_embeddings``):

- latent mode: the written token is ``argmax z``; the latent segment ends at this step
  (not the first) when the untempered entropy of ``z`` exceeds the threshold, when the last
  two written tokens' text (spaces removed) holds a blank line, the think-end or an end of
  text marker, or when ``max_latent_steps`` vectors have been fed. Otherwise the step feeds
  ``v = h W_a`` scaled to norm ``target`` (``projection="none"``: ``h`` itself); its trace
  is the ``max_topk`` tokens whose embedding rows have the largest cosine with ``v``;
- explicit mode (and the step that ends the segment): the written token is fed back as
  itself (the caller gives the engine's sampled tokens for the explicit steps).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

from .soft_thinking_reference import token_embeddings

STOP_TEXT = ("\n\n", "</think>", "<|endoftext|>", "<|im_end|>")


@dataclass
class LatentStep:
    vector: bool  # the step fed a vector
    token: int  # the token written
    entropy: float  # of softmax(z / T), the record's entropy
    ids: list[int]  # vector step: nearest tokens; else [token]
    similarities: list[float]


@dataclass
class LatentResult:
    steps: list[LatentStep] = field(default_factory=list)


@functools.lru_cache(maxsize=4)
def realignment(model) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_a [H, H], target norm), float64, from the model's own input and output matrices
    (the input rows as the model reads them: a scaled lookup's scaled)."""
    w_in = token_embeddings(model).double()
    w_out = model.get_output_embeddings().weight.double()
    gram = w_out.T @ w_out + 1e-5 * torch.eye(w_out.shape[1], dtype=torch.float64)
    return torch.linalg.solve(gram, w_out.T @ w_in), w_in.norm(dim=1).mean()


def _entropy(logits: torch.Tensor, temperature: float = 1.0) -> float:
    logp = torch.log_softmax(logits.double() / temperature, dim=-1)
    return float(-(logp.exp() * logp).sum())


def _logits_of(model, hidden: torch.Tensor) -> torch.Tensor:
    """The model's logits from its final-norm hidden state: the output head, then the final
    soft cap where the family has one (Gemma 2: cap * tanh(z / cap))."""
    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    return logits if not cap else cap * torch.tanh(logits / cap)


@torch.no_grad()
def run_reference_latent(model, tokenizer, prompt_ids: list[int], *, num_steps: int, temperature: float,
                         projection: str = "ridge", latent_entropy_threshold: float = 5.0,
                         max_latent_steps: int = 50, max_topk: int = 5,
                         tokens: dict[int, int] | None = None) -> LatentResult:
    """``num_steps`` thinking steps; ``tokens``: step -> the token the engine sampled there
    (explicit steps); without one, the argmax."""
    w_a, target = realignment(model) if projection != "none" else (None, None)
    w_in = token_embeddings(model)  # [V, H]
    # A zero row (a padding token's) is similar to nothing: cosine 0.
    unit_rows = torch.nan_to_num(w_in / w_in.norm(dim=1, keepdim=True), nan=0.0)
    vocab = model.config.vocab_size
    out = model(input_ids=torch.tensor([prompt_ids]), use_cache=True, output_hidden_states=True)
    result, latent, fed, written = LatentResult(), True, 0, []
    for step in range(num_steps):
        logits, hidden = out.logits[0, -1, :vocab].float(), out.hidden_states[-1][0, -1]
        assert torch.allclose(_logits_of(model, hidden)[:vocab], logits, atol=1e-3), "h is not final-norm"
        probe = int(torch.argmax(logits))
        entropy = _entropy(logits, temperature)
        if latent:
            window = tokenizer.decode(written[-1:] + [probe]).replace(" ", "")
            stop = step > 0 and (_entropy(logits) > latent_entropy_threshold
                                 or any(s in window for s in STOP_TEXT) or fed >= max_latent_steps)
            token = probe
        else:
            stop, token = True, probe if tokens is None else tokens[step]
        written.append(token)
        if latent and not stop:
            h = hidden.double()
            v = h if projection == "none" else h @ w_a * (target / (h @ w_a).norm())
            cosines = unit_rows @ (v / v.norm()).to(unit_rows.dtype)
            near = torch.topk(cosines, max_topk)
            result.steps.append(LatentStep(True, token, entropy, near.indices.tolist(), near.values.tolist()))
            fed += 1
            inputs = v.to(w_in.dtype).view(1, 1, -1)
        else:
            latent = False
            result.steps.append(LatentStep(False, token, entropy, [token], [1.0]))
            inputs = w_in[token].view(1, 1, -1)
        out = model(inputs_embeds=inputs, past_key_values=out.past_key_values, use_cache=True,
                    output_hidden_states=True)
    return result
