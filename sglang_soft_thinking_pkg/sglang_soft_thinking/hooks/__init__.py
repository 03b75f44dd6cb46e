"""The SGLang seams, one module each; :mod:`sglang_soft_thinking.plugin` registers them.

Each hook targets SGLang 0.5.23 (checked at start-up by ``plugin.check_version``).
"""
