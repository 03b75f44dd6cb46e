"""The checks of scripts/gpu_selfcheck.py, one module per job: the bench (bench.py), the
float64 references (reference.py), the replay check (replay.py, with its vector input kind
share in vectors.py), the other device checks (checks.py) and the timings (speed.py).
PyTorch and the plugin's modules only; no SGLang import."""
