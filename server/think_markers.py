"""The markers a model thinks between, as token ids, and whether a prompt leaves them open.

A model's markers are found once, when the server starts (:func:`find_think_markers`):

1. ``--think-markers START END`` names them;
2. else ``<think>`` and ``</think>``, when the vocabulary has each as one token (Qwen3,
   QwQ, the DeepSeek-R1 distills);
3. else ``<think>`` and ``</think>`` written in several tokens, when the chat template
   writes both strings (a template that opens or closes thinking);
4. else the model has none, and its plain chat requests are all answer.

In the output, markers are matched by the token ids each encodes to on its own, as the
engine matches a soft-thinking request's ``think_end_str``: output that spells a marker in
other tokens (a space glued to it, say) is not a marker. Whether the prompt left thinking
open is read from its text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

THINK_START, THINK_END = "<think>", "</think>"


class ThinkMarkersError(ValueError):
    """The named markers cannot be used with this tokenizer; the message says why."""


@dataclass(frozen=True)
class ThinkMarkers:
    start: str
    end: str
    start_ids: tuple[int, ...]
    end_ids: tuple[int, ...]

    def opened_by(self, prompt_text: str) -> bool:
        """Whether the prompt ends inside a thinking block: its last start marker is not
        followed by an end marker (DeepSeek-R1's and QwQ's templates end with ``<think>\n``;
        Qwen3's with thinking off writes an empty, closed block). The prompt is read as
        text: there a marker's tokens may have merged with the text before it (``｜>``
        and ``<think>`` as ``><``, ``think``, ``>``)."""
        start = prompt_text.rfind(self.start)
        return start >= 0 and prompt_text.find(self.end, start + len(self.start)) < 0

    def closed_by(self, prompt_text: str) -> bool:
        """Whether the prompt ends with a closed thinking block, so that the model answers
        at once (Qwen3's template with ``enable_thinking`` false)."""
        return prompt_text.rstrip().endswith(self.end)


def prompt_text(tokenizer, prompt_ids: list[int]) -> str:
    """A prompt as :meth:`ThinkMarkers.opened_by` and :meth:`ThinkMarkers.closed_by` read
    it: special tokens kept (a marker may be one) and the spacing left as the tokens spell it."""
    return tokenizer.decode(prompt_ids, skip_special_tokens=False,
                            clean_up_tokenization_spaces=False)


def _encode(tokenizer, text: str) -> tuple[int, ...]:
    return tuple(tokenizer.encode(text, add_special_tokens=False))


def _template_text(tokenizer) -> str:
    template = getattr(tokenizer, "chat_template", None) or ""
    return " ".join(template.values()) if isinstance(template, dict) else template


def find_think_markers(tokenizer, named: tuple[str, str] | None = None) -> ThinkMarkers | None:
    """The model's think markers by the rules above, or None when it has none."""
    markers = _find(tokenizer, named)
    if markers is None:
        logger.info("no think markers: plain chat requests are all answer")
    else:
        logger.info("think markers %r %r: token ids %s %s", markers.start, markers.end,
                    list(markers.start_ids), list(markers.end_ids))
    return markers


def _find(tokenizer, named: tuple[str, str] | None) -> ThinkMarkers | None:
    if named is not None:
        start, end = named
        start_ids, end_ids = _encode(tokenizer, start), _encode(tokenizer, end)
        for flag_value, ids in ((start, start_ids), (end, end_ids)):
            if not ids:
                raise ThinkMarkersError(f"--think-markers: {flag_value!r} encodes to no token")
        if start_ids == end_ids:
            raise ThinkMarkersError(f"--think-markers: {start!r} and {end!r} encode to the "
                                    f"same tokens")
        return ThinkMarkers(start, end, start_ids, end_ids)
    start_ids, end_ids = _encode(tokenizer, THINK_START), _encode(tokenizer, THINK_END)
    template = _template_text(tokenizer)
    is_one_token = len(start_ids) == 1 and len(end_ids) == 1
    if is_one_token or (THINK_START in template and THINK_END in template):
        return ThinkMarkers(THINK_START, THINK_END, start_ids, end_ids)
    return None
