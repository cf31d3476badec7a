#!/usr/bin/env python3
"""How often this machine stops running a busy process, per core: the noise under every
latency figure measured on it.

    python3 scripts/bench/stalls.py [--seconds N] [--cpus 0,1] [--min-ms 1]

One process per CPU, pinned to it, reads the clock in a loop for N seconds (default 10).
A gap of at least --min-ms between two reads is time the process did not run: the
hypervisor ran something else, or the kernel did (interrupts, its own threads), or another
process shared the core. Run it on the idle machine, before a benchmark: a server or a
load generator on that core loses the same time, and every call in flight waits it out.

Prints per CPU: gaps per second by length (1-2, 2-5, 5-20, 20+ ms), the share of time
lost, and the longest gap.
"""

import argparse
import os
import time


def probe(seconds, min_gap):
    """Runs on the current CPU; returns the gaps (seconds) of at least `min_gap`."""
    gaps = []
    start = time.perf_counter()
    end = start + seconds
    last = start
    while last < end:
        now = time.perf_counter()
        if now - last >= min_gap:
            gaps.append(now - last)
        last = now
    return gaps


def summary(cpu, gaps, seconds):
    buckets = [0, 0, 0, 0]
    for gap in gaps:
        ms = gap * 1000
        buckets[0 if ms < 2 else 1 if ms < 5 else 2 if ms < 20 else 3] += 1
    per_s = " ".join(f"{n / seconds:.2f}" for n in buckets)
    lost = 100 * sum(gaps) / seconds
    longest = max(gaps, default=0) * 1000
    return (
        f"cpu {cpu}: gaps per second [1-2, 2-5, 5-20, 20+ ms]: {per_s}; "
        f"{len(gaps) / seconds:.2f} in all, {lost:.2f} % of the time lost, longest {longest:.1f} ms"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--cpus", default=",".join(str(c) for c in sorted(os.sched_getaffinity(0))))
    parser.add_argument("--min-ms", type=float, default=1)
    args = parser.parse_args()
    cpus = [int(c) for c in args.cpus.split(",")]
    children = []
    for cpu in cpus:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.sched_setaffinity(0, {cpu})
            gaps = probe(args.seconds, args.min_ms / 1000)
            os.write(write, (summary(cpu, gaps, args.seconds) + "\n").encode())
            os._exit(0)
        os.close(write)
        children.append((pid, read))
    for pid, read in children:
        with os.fdopen(read) as pipe:
            print(pipe.read(), end="")
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
