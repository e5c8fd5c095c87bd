"""Benchmarks: `python -m benchmarks.peers` measures treadle against its peers."""
