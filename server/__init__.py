"""OpenAI-compatible HTTP server over an in-process SGLang engine with soft thinking.

Start it with ``python -m server``; build it in code with :func:`server.app.create_app`.
"""
