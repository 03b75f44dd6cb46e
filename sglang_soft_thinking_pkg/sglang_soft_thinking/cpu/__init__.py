"""Running stock SGLang on a CPU without AMX (no CUDA driver, no sgl_kernel build)."""
