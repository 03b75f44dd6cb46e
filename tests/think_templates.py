"""Chat templates that think as today's reasoning models' do, and tokenizers built with them.

The templates are simplified and written here; in the respects the server depends on they
behave like the families' own:

* Qwen3: ChatML; ``enable_thinking`` (default true) in ``chat_template_kwargs``. True: the
  generation prompt is ``<|im_start|>assistant\\n`` and the model opens ``<think>`` itself;
  false: the template writes an empty, closed ``<think>\\n\\n</think>\\n\\n`` block;
* DeepSeek-R1 distills: ``<｜User｜>`` / ``<｜Assistant｜>`` turns; the generation prompt
  ends with ``<think>\\n``, so the model starts inside its thinking;
* QwQ: ChatML; the generation prompt opens ``<think>\\n`` too.

Each drops an earlier assistant turn's thinking (the text up to its ``</think>``), as the
families' templates do. Tokenizers are the default model's, with ``<think>`` and
``</think>`` added as single tokens (as these families' vocabularies have them) or left
as they are (several tokens each).
"""

from __future__ import annotations

from server_process import model_path

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]

_CHATML_TURNS = (
    "{%- for message in messages -%}"
    "{%- set content = message.content -%}"
    "{%- if message.role == 'assistant' -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' -}}"
    "{%- endfor -%}")

QWEN3 = (_CHATML_TURNS +
         "{%- if add_generation_prompt -%}"
         "{{- '<|im_start|>assistant\\n' -}}"
         "{%- if enable_thinking is defined and enable_thinking is false -%}"
         "{{- '<think>\\n\\n</think>\\n\\n' -}}"
         "{%- endif -%}"
         "{%- endif -%}")

QWQ = (_CHATML_TURNS +
       "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n<think>\\n' -}}{%- endif -%}")

DEEPSEEK_R1 = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'system' -%}{{- message.content -}}"
    "{%- elif message.role == 'user' -%}{{- '<｜User｜>' + message.content -}}"
    "{%- else -%}"
    "{{- '<｜Assistant｜>' + message.content.split('</think>')[-1] + '<｜end▁of▁sentence｜>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<｜Assistant｜><think>\\n' -}}{%- endif -%}")

TEMPLATES = {"qwen3": QWEN3, "deepseek_r1": DEEPSEEK_R1, "qwq": QWQ}


def selectable(templates: dict[str, str], variable: str = "family") -> str:
    """One template that renders ``templates[name]`` when ``chat_template_kwargs`` has
    ``{variable: name}``, the first one when it has none."""
    first, *others = templates
    if not others:
        return templates[first]
    text = ""
    for name in others:
        keyword = "elif" if text else "if"
        text += (f"{{%- {keyword} {variable} is defined and {variable} == '{name}' -%}}"
                 + templates[name])
    return text + "{%- else -%}" + templates[first] + "{%- endif -%}"


def family_tokenizer(template: str, one_token_markers: bool = True):
    """The default model's tokenizer with ``template`` as its chat template and, if asked,
    ``<think>`` / ``</think>`` added as single tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    if one_token_markers:
        tokenizer.add_tokens(["<think>", "</think>"])
    tokenizer.chat_template = template
    return tokenizer


def prompt_ids(tokenizer, **template_kwargs) -> list[int]:
    return list(tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True,
                                              tokenize=True, return_dict=False,
                                              **template_kwargs))
