"""SoftCoT prompts: the assistant's and the base model's, with N placeholder tokens between markers.

The assistant reads the question and then, at the start of its own turn, the *thought
block* ``BEGIN PH PH ... PH END``; its last-layer hidden states at the N ``PH`` positions
become the soft thoughts. The base model's user turn holds the question and the same
thought block, whose ``PH`` embeddings are overwritten by the projected thoughts.

Marker tokens are reserved or special tokens of the tokenizer's family, each one token,
so the placeholder positions are exactly where ``PH``'s id occurs:

============  ===============================  ===============================  ===============================
family        placeholder                      begin                            end
============  ===============================  ===============================  ===============================
llama3        ``<|reserved_special_token_0|>``  ``<|reserved_special_token_1|>``  ``<|reserved_special_token_2|>``
qwen2         ``<|vision_pad|>``                ``<|vision_start|>``              ``<|vision_end|>``
smollm2       ``<empty_output>``                ``<jupyter_start>``               ``<jupyter_output>``
============  ===============================  ===============================  ===============================

The SmolLM2 (StarCoder-style) vocabulary has no reserved tokens; its notebook-format
special tokens never occur in chat, so they serve as markers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


class TemplateError(ValueError):
    """A tokenizer or prompt that SoftCoT's templates cannot serve; the message says why."""


@dataclass(frozen=True)
class Markers:
    placeholder: str
    begin: str
    end: str


MARKER_FAMILIES: dict[str, Markers] = {
    "llama3": Markers("<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                      "<|reserved_special_token_2|>"),
    "qwen2": Markers("<|vision_pad|>", "<|vision_start|>", "<|vision_end|>"),
    "smollm2": Markers("<empty_output>", "<jupyter_start>", "<jupyter_output>"),
}

# Per task: the assistant's user turn and the base model's user turn.
TASK_INSTRUCTIONS: dict[str, tuple[str, str]] = {
    "math": (
        "Think about how to solve this math problem.\nQuestion: {question}",
        "Solve the math problem step by step, then give the final number after '####'.\n"
        "Question: {question}\n"
        "Thoughts from an assistant, which may help: {thoughts}",
    ),
    "multiple_choice": (
        "Think about which option answers this question.\nQuestion: {question}",
        "Answer the multiple-choice question. Reason briefly, then end with "
        "'The answer is (X)'.\nQuestion: {question}\n"
        "Thoughts from an assistant, which may help: {thoughts}",
    ),
}


def without_thoughts(base_instruction: str) -> str:
    """A base instruction with its ``{thoughts}`` line removed."""
    return "\n".join(line for line in base_instruction.split("\n") if "{thoughts}" not in line)


def single_token_id(tokenizer, text: str) -> int | None:
    """The id of ``text`` if the tokenizer encodes it as exactly one token."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def choose_markers(tokenizer) -> tuple[str, Markers]:
    """The first family whose three marker tokens are single tokens of ``tokenizer``."""
    for family, markers in MARKER_FAMILIES.items():
        ids = [single_token_id(tokenizer, text) for text in asdict(markers).values()]
        if None not in ids and len(set(ids)) == 3:
            return family, markers
    raise TemplateError("the tokenizer has none of SoftCoT's marker token sets "
                        f"({', '.join(MARKER_FAMILIES)}); see softcot_plugin/templates.py")


def chat_ids(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a conversation ready for the model's reply (the chat template's generation prompt)."""
    if getattr(tokenizer, "chat_template", None):
        return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=True, return_dict=False))
    text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages)
    return tokenizer.encode(text + "Assistant:")


@dataclass(frozen=True)
class PromptTemplates:
    """Everything that turns a question into the two prompts; stored in the checkpoint."""

    task: str
    assistant_instruction: str
    base_instruction: str
    markers: Markers
    num_thought_tokens: int

    @classmethod
    def for_task(cls, task: str, markers: Markers, num_thought_tokens: int) -> "PromptTemplates":
        if task not in TASK_INSTRUCTIONS:
            raise TemplateError(f"unknown task {task!r}; known: {', '.join(TASK_INSTRUCTIONS)}")
        if num_thought_tokens < 1:
            raise TemplateError("num_thought_tokens must be at least 1")
        assistant, base = TASK_INSTRUCTIONS[task]
        return cls(task, assistant, base, markers, num_thought_tokens)

    @property
    def thought_block(self) -> str:
        m = self.markers
        return m.begin + m.placeholder * self.num_thought_tokens + m.end

    def base_user_content(self, question: str) -> str:
        """The base model's user turn: the question and the thought block."""
        return self.base_instruction.format(question=question, thoughts=self.thought_block)

    def plain_user_content(self, question: str) -> str:
        """The base instruction without its thoughts line: the baseline without SoftCoT."""
        return without_thoughts(self.base_instruction).format(question=question)

    def assistant_ids(self, tokenizer, question: str) -> list[int]:
        """The assistant's prompt: its instruction and question, then its turn opens with the thought block."""
        messages = [{"role": "user", "content": self.assistant_instruction.format(question=question)}]
        return chat_ids(tokenizer, messages) + tokenizer.encode(self.thought_block,
                                                                add_special_tokens=False)

    def base_ids(self, tokenizer, question: str) -> list[int]:
        return chat_ids(tokenizer, [{"role": "user", "content": self.base_user_content(question)}])

    def placeholder_positions(self, tokenizer, ids: list[int]) -> list[int]:
        """Where the placeholder occurs in ``ids``; exactly N of them, else a TemplateError."""
        placeholder_id = single_token_id(tokenizer, self.markers.placeholder)
        positions = [i for i, token in enumerate(ids) if token == placeholder_id]
        if len(positions) != self.num_thought_tokens:
            raise TemplateError(
                f"the prompt holds {len(positions)} SoftCoT placeholder tokens "
                f"({self.markers.placeholder}), expected {self.num_thought_tokens}; the text "
                "itself must not contain the placeholder")
        return positions

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PromptTemplates":
        fields = dict(data)
        fields["markers"] = Markers(**fields["markers"])
        return cls(**fields)
