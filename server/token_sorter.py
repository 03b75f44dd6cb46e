"""A chat choice's output tokens sorted, as they come, into thinking, markup and answer.

Which tokens are thinking is read from what the engine knows, never from the text:

* a soft-thinking request's tokens carry the plugin's records (``sglang_soft_thinking.output``):
  ``think`` steps are thinking, ``think_end`` is the token that completes a think-end string
  the model wrote itself, ``cold_stop`` / ``budget`` / a method's end tokens are the
  think-end string the engine wrote, ``answer`` tokens are the answer. A thinking step's
  record also says how many of the last tokens may be the start of the think-end string
  (``pending``): those are held back until the records show whether they are markup;
* a plain request's tokens carry no records: its thinking ends at the model's end marker
  (its token ids, one or several), and tokens that may begin the end marker are held back
  until the next ones show whether they complete it.

A choice thinks from its first token when its prompt left thinking open or it is a soft
request; either way, when its first tokens spell the model's start marker they are markup
and it thinks (a plain choice whose prompt did not open thinking answers otherwise). Those
first tokens are held until they spell the marker or stop matching it.
"""

from __future__ import annotations

from collections import deque

from sglang_soft_thinking.output import ANSWER, FORCED_KINDS, THINK, THINK_END

# Where a choice is in its output.
_OPENING = "opening"  # its first tokens may still be the start marker
_THINKING = "thinking"
_FORCED_END = "forced_end"  # the engine is writing the think-end string
_ANSWER = "answer"


class TokenSorter:
    """Sorts output tokens into thinking and answer (markup goes to neither).

    ``thinking``: whether the choice thinks from its first token. ``start_ids`` /
    ``end_ids``: the model's think markers as token ids (empty: none). A soft request's
    sorter is given no ``end_ids``: the records say where its thinking ends.
    """

    def __init__(self, thinking: bool, start_ids: tuple[int, ...] = (),
                 end_ids: tuple[int, ...] = ()):
        self.start_ids, self.end_ids = tuple(start_ids), tuple(end_ids)
        self.has_thinking = thinking
        self.phase = _OPENING if self.start_ids else (_THINKING if thinking else _ANSWER)
        self.reasoning_tokens = 0  # tokens before the answer, markup included
        self._opening: list[tuple] = []  # first tokens that may be the start marker
        self._held: list[int] = []  # thinking tokens that may begin the think-end string

    @property
    def is_answering(self) -> bool:
        return self.phase == _ANSWER

    def sort(self, ids: list[int], kinds: list | None,
             pending: list[int] | None = None) -> tuple[list[int], list[int]]:
        """``(thinking_ids, answer_ids)`` that these tokens settle (the thinking comes first).

        ``kinds`` are the plugin's record kinds per token and ``pending`` its counts of
        trailing tokens that may start the think-end string (a soft request), or None (a
        plain request).
        """
        kinds = [None] * len(ids) if kinds is None else kinds
        pending = [0] * len(ids) if not pending else pending
        items = deque(zip(ids, kinds, pending))
        thinking: list[int] = []
        answer: list[int] = []
        while items:
            item = items.popleft()
            if self.phase == _OPENING:
                items.extendleft(reversed(self._open(item)))
            else:
                self._place(*item, thinking, answer)
        return thinking, answer

    def finish(self) -> tuple[list[int], list[int]]:
        """The tokens still held, once no more come: first tokens that began the start
        marker but did not complete it, and thinking that began the think-end string."""
        thinking: list[int] = []
        answer: list[int] = []
        if self.phase == _OPENING:
            replay, self._opening = self._opening, []
            self.phase = _THINKING if self.has_thinking else _ANSWER
            for item in replay:
                self._place(*item, thinking, answer)
        thinking += self._held
        self._held = []
        return thinking, answer

    def _open(self, item: tuple) -> list[tuple]:
        """One of the first tokens: held while it may be the start marker; returns the
        tokens to sort again once they cannot be."""
        token, kind, _ = item
        self._opening.append(item)
        count = len(self._opening)
        if kind in (None, THINK) and token == self.start_ids[count - 1]:
            if count == len(self.start_ids):  # the start marker: markup, and it thinks
                self.phase, self.has_thinking, self._opening = _THINKING, True, []
                self.reasoning_tokens += count
            return []
        replay, self._opening = self._opening, []
        self.phase = _THINKING if self.has_thinking else _ANSWER
        return replay

    def _place(self, token: int, kind: str | None, pending: int,
               thinking: list[int], answer: list[int]) -> None:
        if self.phase == _ANSWER:
            answer.append(token)
            return
        if kind in FORCED_KINDS:
            thinking += self._held
            self._held, self.phase = [], _FORCED_END
        elif kind == ANSWER or self.phase == _FORCED_END:
            thinking += self._held
            self._held, self.phase = [], _ANSWER
            answer.append(token)
            return
        elif kind == THINK_END:
            self._held, self.phase = [], _ANSWER  # the held tokens began the think-end string
        elif kind is not None:
            thinking += self._hold(token, pending)
        else:
            thinking += self._think(token)
        self.reasoning_tokens += 1

    def _hold(self, token: int, pending: int) -> list[int]:
        """A soft request's thinking token: keep the last ``pending`` tokens back."""
        held = self._held + [token]
        self._held = held[len(held) - pending:] if pending else []
        return held[:len(held) - pending]

    def _think(self, token: int) -> list[int]:
        """A plain request's thinking token: its thinking ends at the end marker; the
        longest tail that may begin the marker is kept back."""
        held = self._held + [token]
        end = self.end_ids
        if end and tuple(held[-len(end):]) == end:
            self._held, self.phase = [], _ANSWER
            return held[:-len(end)]
        keep = next((n for n in range(min(len(end) - 1, len(held)), 0, -1)
                     if tuple(held[-n:]) == end[:n]), 0)
        self._held = held[len(held) - keep:]
        return held[:len(held) - keep]
