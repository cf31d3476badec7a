#!/usr/bin/env python3
"""Where a load generator run's slow calls come from: spread through the run, or together.

    python3 scripts/bench/tail.py TRACE [TRACE ...]

Each TRACE is a file `tollgate-loadgen --trace-dir DIR` wrote (`DIR/<rpc>.trace`: one line
per call, when it ended and its latency, both in microseconds). For each it prints:

- the percentiles of the latency (the ones the load generator printed);
- the share of the calls slower than the p99 that ended inside the 10 % of 50 ms windows
  holding most of them: about 10 % if slow calls are spread evenly, near 100 % if they
  come together;
- stalls: 5 ms windows in which fewer than half the median number of calls ended (the
  server or the load generator did not run), how many per second, and when.

A stall delays every call in flight; with C calls in flight at X calls per second, one
stall of S seconds touches about C + X * S calls. Compare the stall rate with what
`scripts/bench/stalls.py` measures on the idle machine.
"""

import sys
from collections import Counter


def load(path):
    calls = []
    with open(path) as trace:
        for line in trace:
            ended, latency = line.split()
            calls.append((int(ended), int(latency)))
    return calls


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def report(path):
    calls = load(path)
    if not calls:
        print(f"{path}: no calls")
        return
    latencies = sorted(latency for _, latency in calls)
    p99 = percentile(latencies, 0.99)
    figures = " ".join(
        f"{name}={percentile(latencies, q)}"
        for name, q in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p99.9", 0.999)]
    )
    duration_s = calls[-1][0] / 1e6
    print(f"{path}: {len(calls)} calls in {duration_s:.1f} s, latency us {figures} max={latencies[-1]}")

    slow_by_window = Counter(ended // 50_000 for ended, latency in calls if latency > p99)
    windows = calls[-1][0] // 50_000 + 1
    slow = sum(slow_by_window.values())
    worst = sorted(slow_by_window.values(), reverse=True)[: max(1, windows // 10)]
    if slow:
        print(
            f"  calls slower than p99: {slow}; {100 * sum(worst) / slow:.0f} % of them ended in "
            f"the worst {len(worst)} of {windows} 50 ms windows"
        )

    per_window = Counter(ended // 5_000 for ended, _ in calls)
    counts = [per_window.get(w, 0) for w in range(calls[-1][0] // 5_000 + 1)]
    median = sorted(counts)[len(counts) // 2]
    stalls = [w * 5 for w, n in enumerate(counts) if n < median / 2]
    shown = ", ".join(str(ms) for ms in stalls[:20]) + (" ..." if len(stalls) > 20 else "")
    print(
        f"  stalls: {len(stalls)} of {len(counts)} 5 ms windows below half the median "
        f"({median} calls), {len(stalls) / max(duration_s, 1e-9):.1f} per second; at ms: {shown}"
    )


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        report(path)


if __name__ == "__main__":
    main()
