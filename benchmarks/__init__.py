"""Benchmarks: each prints `name: value unit (ratio× baseline)` with the baseline measured in the same run."""
