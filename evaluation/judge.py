"""An optional LLM judge for math answers that math-verify rejects.

math-verify compares parsed expressions; an answer written in words ("one half"), with
units, or in a form its parser does not read is rejected although it is right. The judge
asks a chat model behind any OpenAI-compatible endpoint whether the final answer is
equivalent to the reference answer, at temperature 0, and reads the last ``YES`` or ``NO``
of its reply. It is only asked about samples math-verify rejected, so it can turn a wrong
verdict into a right one but never the other way.

A judge that fails (the endpoint is down, refuses the request, times out, or replies
without a verdict) decides nothing: :meth:`Judge.judge` returns a :class:`JudgeVerdict`
whose ``verdict`` is None and whose ``error`` says why, and the sample keeps
math-verify's verdict.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import openai

from evaluation.scoring import Verdict, last_boxed

logger = logging.getLogger(__name__)

# The judge reads at most this much of a response that has no \boxed{} answer: its end,
# where the final answer is.
MAX_ANSWER_CHARS = 2000
PROMPT = """\
Decide whether a student's final answer to a math problem is equivalent to the reference \
answer: the same number, expression, set or interval, possibly written differently (for \
example 1/2, 0.5 and "one half" are equivalent). Do not solve the problem yourself and \
do not judge the student's reasoning, only the final answer.

Problem:
{problem}

Reference answer:
{reference}

Student's final answer:
{answer}

Reply with one word: YES if the student's final answer is equivalent to the reference \
answer, NO if it is not."""
_VERDICT_WORD = re.compile(r"\b(YES|NO)\b", re.IGNORECASE)


@dataclass(frozen=True)
class JudgeSettings:
    """Where the judge is and how it is asked; ``extra_body`` is merged into each request
    (e.g. ``{"chat_template_kwargs": {"enable_thinking": false}}`` or ``top_k``)."""

    base_url: str
    model: str
    api_key: str = "none"
    timeout_s: float = 60.0
    max_tokens: int = 1024
    retries: int = 2
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JudgeVerdict:
    """The judge's answer about one sample: ``verdict`` True (equivalent), False (not), or
    None when the judge gave none, ``error`` then saying why; ``reply`` is its raw text."""

    model: str
    verdict: bool | None
    reply: str | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def final_answer(answer: str, full: str) -> str | None:
    """What the judge is shown as the final answer: the last ``\\boxed{}`` of the answer
    part, else of the whole completion, else the end of the answer part (or of the whole
    completion when the answer part is empty); None when there is no text at all."""
    for text in (answer, full):
        boxed = last_boxed(text or "")
        if boxed is not None and boxed.strip():
            return boxed.strip()
    text = (answer or "").strip() or (full or "").strip()
    return text[-MAX_ANSWER_CHARS:] if text else None


def read_verdict(reply: str) -> bool | None:
    """The last standalone YES or NO of the reply (a reasoning judge may deliberate first)."""
    words = _VERDICT_WORD.findall(reply)
    return words[-1].upper() == "YES" if words else None


class Judge:
    """Asks one judge model; thread-safe (the harness scores samples in worker threads)."""

    def __init__(self, settings: JudgeSettings):
        self.settings = settings
        self.client = openai.OpenAI(base_url=settings.base_url, api_key=settings.api_key,
                                    timeout=settings.timeout_s, max_retries=settings.retries)

    def request(self, problem: str, reference: str, answer: str) -> dict:
        """Keyword arguments of the judge's ``chat.completions.create`` call."""
        prompt = PROMPT.format(problem=problem.strip(), reference=str(reference).strip(),
                               answer=answer)
        body: dict[str, Any] = {"model": self.settings.model, "temperature": 0,
                                "max_tokens": self.settings.max_tokens,
                                "messages": [{"role": "user", "content": prompt}]}
        if self.settings.extra_body:
            body["extra_body"] = self.settings.extra_body
        return body

    def judge(self, problem: str, reference: str, answer: str) -> JudgeVerdict:
        """Is ``answer`` equivalent to ``reference``? Never raises for the judge's failures."""
        model = self.settings.model
        try:
            response = self.client.chat.completions.create(
                **self.request(problem, reference, answer))
        except openai.APITimeoutError:
            return JudgeVerdict(model, None, error=f"timed out after {self.settings.timeout_s:g} s")
        except openai.APIStatusError as error:
            return JudgeVerdict(model, None, error=f"refused ({error.status_code}): {error.message}")
        except openai.APIConnectionError as error:
            return JudgeVerdict(model, None,
                                error=f"cannot reach {self.settings.base_url} ({error})")
        except openai.OpenAIError as error:  # e.g. a reply that is not a chat completion
            return JudgeVerdict(model, None, error=f"{type(error).__name__}: {error}")
        if not response.choices:
            return JudgeVerdict(model, None, error="the judge's reply has no choices")
        reply = response.choices[0].message.content or ""
        verdict = read_verdict(reply)
        if verdict is None:
            return JudgeVerdict(model, None, reply, "no YES or NO in the judge's reply")
        return JudgeVerdict(model, verdict, reply)

    def close(self) -> None:
        self.client.close()


def review(judge: Judge | None, task: str, verdict: Verdict, question: str, gold,
           answer: str, full: str) -> tuple[Verdict, dict | None]:
    """The sample's final verdict and its ``judge`` record (None when the judge was not asked).

    The judge is asked only about a math sample that math-verify rejected and that has some
    text; the final verdict is correct when math-verify or the judge accepts. The record
    holds both verdicts: ``math_verify`` (math-verify's) and the judge's ``verdict``, with its
    ``model``, raw ``reply`` and ``error``.
    """
    if judge is None or task != "math" or verdict.correct:
        return verdict, None
    shown = final_answer(answer, full)
    if shown is None:
        return verdict, None
    opinion = judge.judge(question, str(gold), shown)
    if opinion.error:
        logger.warning("judge gave no verdict (%s); math-verify's verdict stands", opinion.error)
    record = {"math_verify": verdict.correct, **opinion.to_dict()}
    if opinion.verdict:
        verdict = Verdict(True, verdict.extracted, verdict.detail)
    return verdict, record
