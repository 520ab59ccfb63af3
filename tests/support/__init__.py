"""Helpers the tests (and the benchmarks) share: data, AWS fixtures' pieces, builders. Not shipped."""
