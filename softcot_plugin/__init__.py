"""SoftCoT: soft thought vectors from a frozen assistant model, projected into a frozen base model's prompt.

Modules: ``templates`` (prompts and marker tokens), ``projection`` (the trained linear
map), ``checkpoint`` (its file format and the fit check), ``thoughts`` (assistant hidden
states and their injection), ``data`` (GSM8K-format examples), ``training`` (the loop),
``local`` (transformers sampling with thoughts) and the CLIs ``train`` and ``evaluate``.
The server's side lives in ``server/softcot.py``.
"""
