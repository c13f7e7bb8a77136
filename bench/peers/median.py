#!/usr/bin/env python3
"""bench/peers/median.py — the median helper of `make bench`: reads numbers
(whitespace or newline separated) on stdin, prints 'median min max n'.
Used by the peer scripts and by scripts/bench's report, so every figure is
summarised the same way. Exits 1 (printing 'nan nan nan 0') on no input."""
import statistics
import sys

v = [float(x) for x in sys.stdin.read().split()]
if not v:
    print("nan nan nan 0")
    sys.exit(1)
print(f"{statistics.median(v):.6g} {min(v):.6g} {max(v):.6g} {len(v)}")
