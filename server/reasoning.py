"""A chat choice's reasoning and answer, split token by token by what the engine knows.

Which output tokens are thinking is not guessed from the text:

* a soft-thinking request's tokens carry the plugin's records (``sglang_soft_thinking.output``):
  ``think`` steps are thinking, ``think_end`` is the token that completes a think-end string
  the model wrote itself, ``cold_stop`` / ``budget`` / a method's end tokens are the
  think-end string the engine wrote, ``answer`` tokens are the answer. A thinking step's
  record also says how many of the last tokens may be the start of the think-end string
  (``pending``): those are held back until the records show whether they are markup. The
  server never tokenises or matches the think-end string itself;
* a plain request to a model with a thinking template (``<think>`` and ``</think>`` each one
  token in its vocabulary: Qwen3, DeepSeek-R1 distills, QwQ) thinks when its prompt leaves a
  ``<think>`` open or its output starts with one, and stops thinking at the ``</think>`` token.

Think markup (the opening ``<think>``, the think-end string) goes to neither part but counts
as reasoning; the answer's leading newlines are dropped. Each part is detokenized on its own,
incrementally, so reasoning streams as it is generated; a stream and a whole response are the
same split, fed in different slices. A stop string is held back while it may still be
completed and cut from the text as SGLang cuts it; a stop token is not part of the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from sglang_soft_thinking.output import ANSWER, FORCED_KINDS, META_INFO_KEY, THINK_END

from server.engine import GenerationJob

TEMPLATE_START, TEMPLATE_END = "<think>", "</think>"  # a thinking template's one-token markers
_FORCED = FORCED_KINDS

# Where a choice is in its output.
_OPENING = "opening"  # plain request: the first token says whether it thinks
_THINKING = "thinking"
_FORCED_END = "forced_end"  # the engine is writing the think-end string
_ANSWER = "answer"


@dataclass(frozen=True)
class ThinkingTemplate:
    """The model's one-token think markers."""

    start_id: int
    end_id: int


@lru_cache(maxsize=8)
def thinking_template(tokenizer) -> ThinkingTemplate | None:
    """The model's ``<think>``/``</think>`` tokens, if each is one token of its vocabulary."""
    start = tokenizer.encode(TEMPLATE_START, add_special_tokens=False)
    end = tokenizer.encode(TEMPLATE_END, add_special_tokens=False)
    if len(start) == 1 and len(end) == 1:
        return ThinkingTemplate(start[0], end[0])
    return None


def _prompt_opens_thinking(prompt: list[int], template: ThinkingTemplate) -> bool:
    """Whether the prompt ends inside a ``<think>`` block (e.g. DeepSeek-R1's template)."""
    last_start = last_end = -1
    for position, token in enumerate(prompt):
        if token == template.start_id:
            last_start = position
        elif token == template.end_id:
            last_end = position
    return last_start > last_end


class TokenSorter:
    """Sorts output tokens, as they come, into thinking and answer (markup goes to neither).

    ``kinds`` are the plugin's record kinds per token and ``pending`` its count of trailing
    tokens that may start the think-end string (a soft-thinking request), or None (a plain
    request, whose thinking ends at its template's one ``end_id``). Tokens that may be the
    start of the think-end string are held until the next tokens show whether they are.
    """

    def __init__(self, thinking: bool, start_id: int | None, end_id: int | None = None):
        self.end_ids = () if end_id is None else (end_id,)
        self.start_id = start_id
        self.phase = _THINKING if thinking else _OPENING
        self.has_thinking = thinking
        self.reasoning_tokens = 0  # tokens before the answer, markup included
        self._seen = 0
        self._held: list[int] = []

    def sort(self, ids: list[int], kinds: list | None,
             pending: list[int] | None = None) -> tuple[list[int], list[int]]:
        """``(thinking_ids, answer_ids)`` that these tokens settle (the thinking comes first)."""
        thinking: list[int] = []
        answer: list[int] = []
        for i, token in enumerate(ids):
            kind = None if kinds is None else kinds[i]
            is_first, self._seen = self._seen == 0, self._seen + 1
            if is_first and token == self.start_id:
                self.phase, self.has_thinking = _THINKING, True  # the opening <think>: markup
            elif self.phase in (_OPENING, _ANSWER):
                self.phase = _ANSWER
                answer.append(token)
                continue
            elif kind in _FORCED:
                thinking += self._held
                self._held, self.phase = [], _FORCED_END
            elif kind == ANSWER or self.phase == _FORCED_END:
                thinking += self._held
                self._held, self.phase = [], _ANSWER
                answer.append(token)
                continue
            elif kind == THINK_END:
                self._held, self.phase = [], _ANSWER  # the held tokens began the think-end string
            elif kinds is not None:
                thinking += self._hold(token, pending[i] if pending else 0)
            else:
                thinking += self._think(token)
            self.reasoning_tokens += 1
        return thinking, answer

    def _hold(self, token: int, pending: int) -> list[int]:
        """A soft request's thinking token: keep the last ``pending`` tokens back."""
        held = self._held + [token]
        self._held = held[len(held) - pending:] if pending else []
        return held[:len(held) - pending]

    def release(self) -> list[int]:
        """The held tokens, once no more come (they were thinking after all)."""
        held, self._held = self._held, []
        return held

    def _think(self, token: int) -> list[int]:
        """A plain request's thinking token: its thinking ends at the template's end token."""
        held = self._held + [token]
        end = self.end_ids
        if end and len(held) >= len(end) and tuple(held[-len(end):]) == end:
            self._held, self.phase = [], _ANSWER
            return held[:-len(end)]
        keep = next((n for n in range(min(len(end) - 1, len(held)), 0, -1)
                     if tuple(held[-n:]) == end[:n]), 0)
        self._held = held[len(held) - keep:]
        return held[:len(held) - keep]


class _TextPart:
    """One part's text, detokenized as its tokens come.

    Each step decodes a short window (the tokens since the last step plus those of the step
    before, for context) and sends what it adds, unless it ends in an incomplete character.
    """

    def __init__(self, decode: Callable[[list[int]], str], stop: tuple[str, ...]):
        self._decode, self._stop = decode, stop
        self._ids: list[int] = []
        self._window = self._read = 0  # window start; tokens up to _read are sent
        self._held = ""  # text that may be the start of a stop string
        self._strip_newlines = False
        self.text = ""  # what has been sent

    def add(self, ids: list[int]) -> str:
        self._ids += ids
        before = self._decode(self._ids[self._window:self._read])
        now = self._decode(self._ids[self._window:])
        if len(now) <= len(before) or now.endswith("\ufffd"):
            return ""
        self._window, self._read = self._read, len(self._ids)
        return self._send(now[len(before):], final=False)

    def close(self, stop_matched: str | None = None) -> str:
        """The rest of the text; ``stop_matched`` is cut off with what follows it."""
        before = self._decode(self._ids[self._window:self._read])
        rest = self._decode(self._ids[self._window:])[len(before):]
        self._window = self._read = len(self._ids)
        text = self._held + rest
        self._held = ""
        if stop_matched:
            index = text.find(stop_matched)
            if index >= 0:
                text = text[:index]
        return self._send(text, final=True)

    def strip_leading_newlines(self) -> None:
        """Drop the newlines this part's text starts with (an answer after thinking)."""
        self._strip_newlines = True

    def _send(self, text: str, final: bool) -> str:
        if not final:
            text = self._hold_stop_prefix(self._held + text)
        if self._strip_newlines:
            text = text.lstrip("\n")
            self._strip_newlines = not text
        self.text += text
        return text

    def _hold_stop_prefix(self, text: str) -> str:
        """Sends all but a tail that is, or may become, a stop string."""
        cut = len(text)
        for stop in self._stop:
            index = text.find(stop)
            if index >= 0:
                cut = min(cut, index)
            for n in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:n]):
                    cut = min(cut, len(text) - n)
                    break
        self._held = text[cut:]
        return text[:cut]


class ReasoningSplitter:
    """One chat choice's ``(reasoning, content)`` text, fed its output tokens in order.

    ``reasoning`` is None when the choice never thought, ``content`` when it never
    answered (it ended while thinking); ``reasoning_tokens`` counts the tokens before the
    answer, markup included.
    """

    def __init__(self, sorter: TokenSorter, decode: Callable[[list[int]], str],
                 stop: tuple[str, ...]):
        self._sorter = sorter
        self._reasoning = _TextPart(decode, stop)
        self._answer = _TextPart(decode, stop)
        self._answer_started = self._closed_reasoning = False
        self._seen = 0

    @property
    def reasoning_tokens(self) -> int:
        return self._sorter.reasoning_tokens

    @property
    def reasoning(self) -> str | None:
        return self._reasoning.text if self._sorter.has_thinking else None

    @property
    def content(self) -> str | None:
        return self._answer.text if self._answer_started or not self._sorter.has_thinking else None

    def feed(self, ids: list[int], kinds: list | None, pending: list[int] | None = None) -> tuple[str, str]:
        """The ``(reasoning, content)`` text these tokens add (either may be empty)."""
        return self._step(*self._sorter.sort(ids, kinds, pending))

    def finish(self, ids: list[int], kinds: list | None, stop_matched: str | int | None,
               pending: list[int] | None = None) -> tuple[str, str]:
        """The last tokens and the rest of the text, once the choice has finished.

        ``stop_matched`` is SGLang's ``finish_reason["matched"]``: a stop string is cut
        from the text, a stop token (the last token) is left out of it.
        """
        thinking, answer = self._sorter.sort(ids, kinds, pending)
        thinking += self._sorter.release()
        if isinstance(stop_matched, int) and ids and ids[-1] == stop_matched:
            last = answer if answer else thinking
            if last and last[-1] == stop_matched:
                last.pop()
        reasoning, content = self._step(thinking, answer)
        cut = stop_matched if isinstance(stop_matched, str) else None
        if self._answer_started:
            content += self._answer.close(cut)
        elif not self._closed_reasoning:
            reasoning += self._reasoning.close(cut)
        return reasoning, content

    def _step(self, thinking: list[int], answer: list[int]) -> tuple[str, str]:
        reasoning = self._reasoning.add(thinking) if thinking else ""
        content = ""
        if (answer or self._sorter.phase == _ANSWER) and not self._answer_started:
            self._answer_started = True
            if self._sorter.has_thinking:
                self._answer.strip_leading_newlines()
        if self._answer_started and not self._closed_reasoning:
            self._closed_reasoning = True
            reasoning += self._reasoning.close()
        if answer:
            content = self._answer.add(answer)
        return reasoning, content


def reasoning_splitter(job: GenerationJob, index: int, tokenizer) -> ReasoningSplitter | None:
    """The splitter for chat choice ``index``, or None when its text is all content."""
    template = thinking_template(tokenizer)
    if job.soft is not None:
        sorter = TokenSorter(thinking=True, start_id=None if template is None else template.start_id)
    elif template is not None:
        sorter = TokenSorter(start_id=template.start_id, end_id=template.end_id,
                             thinking=_prompt_opens_thinking(job.prompt_of(index), template))
    else:
        return None
    stop = job.sampling_params.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else tuple(stop)
    return ReasoningSplitter(sorter, lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
                             stop)


@dataclass
class NewTokens:
    """What an engine output adds to a choice: its new token ids, their record kinds and
    their records' ``pending`` counts (output.py)."""

    ids: list[int]
    kinds: list | None
    finished: bool
    stop_matched: str | int | None
    pending: list[int] | None = None


def new_tokens(output: dict, seen: int, soft: bool) -> NewTokens:
    """The tokens of ``output`` after the first ``seen``.

    A streamed output's token list and records may have grown past it by the time it is
    read (SGLang hands on its growing lists); its ``completion_tokens`` is when it was made.
    """
    meta = output["meta_info"]
    finish = meta.get("finish_reason")
    ids = output.get("output_ids") or []
    count = len(ids) if finish is not None else min(len(ids), meta["completion_tokens"])
    kinds = pending = None
    if soft:
        records = (meta.get(META_INFO_KEY) or [])[seen:count]
        kinds = [None if r is None else r[0] for r in records]
        pending = [r[4] if r is not None and len(r) > 4 else 0 for r in records]
        kinds += [None] * (count - seen - len(kinds))
        pending += [0] * (count - seen - len(pending))
    matched = finish.get("matched") if isinstance(finish, dict) else None
    return NewTokens(list(ids[seen:count]), kinds, finish is not None, matched, pending)
