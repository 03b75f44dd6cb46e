"""A chat choice's reasoning and answer text, split token by token by what the engine knows.

Its tokens are sorted into thinking, markup and answer by :mod:`server.token_sorter`: a
soft-thinking request's by the plugin's records, a plain request's by the model's think
markers (:mod:`server.think_markers`). Think markup (the start marker, the think-end string)
goes to neither part but counts as reasoning; the answer's leading newlines are dropped.
Each part is detokenized on its own, incrementally, so reasoning streams as it is
generated; a stream and a whole response are the same split, fed in different slices. A
stop string is held back while it may still be completed and cut from the text as SGLang
cuts it; a stop token is not part of the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sglang_soft_thinking.output import META_INFO_KEY

from server.engine import GenerationJob
from server.think_markers import ThinkMarkers, prompt_text
from server.token_sorter import TokenSorter


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
        held_thinking, held_answer = self._sorter.finish()
        thinking, answer = thinking + held_thinking, answer + held_answer
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
        if (answer or self._sorter.is_answering) and not self._answer_started:
            self._answer_started = True
            if self._sorter.has_thinking:
                self._answer.strip_leading_newlines()
        if self._answer_started and not self._closed_reasoning:
            self._closed_reasoning = True
            reasoning += self._reasoning.close()
        if answer:
            content = self._answer.add(answer)
        return reasoning, content


def reasoning_splitter(job: GenerationJob, index: int, tokenizer,
                       markers: ThinkMarkers | None) -> ReasoningSplitter | None:
    """The splitter for chat choice ``index`` of a model with these think ``markers``, or
    None when its text is all content (a plain request to a model without markers)."""
    if job.soft is not None:
        sorter = TokenSorter(thinking=True, start_ids=markers.start_ids if markers else ())
    elif markers is not None:
        prompt = prompt_text(tokenizer, job.prompt_of(index))
        sorter = TokenSorter(markers.opened_by(prompt), markers.start_ids, markers.end_ids)
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
