"""Soft Thinking for stock SGLang.

The package is an SGLang plugin (entry point ``sglang.srt.plugins``); SGLang
calls :func:`sglang_soft_thinking.plugin.register` in each of its processes.
Importing the package itself is cheap and imports neither torch nor SGLang.
"""

__version__ = "0.1.0"
