"""Benchmarks against a running server: the harness and the throughput benchmark."""
