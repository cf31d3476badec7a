#!/usr/bin/env python3
"""What one durable log write costs on this disk: `pwrite` + `fdatasync` into preallocated
space, as the embedded store's log does. Prints wall-clock latency (p50, p99, p99.9, max)
and the CPU it takes (this process's user and kernel time, and the whole machine's busy
time, per write).

    python3 scripts/bench/fsync.py [--count N] [--bytes B] [--dir DIR] [--direct]

`--direct` writes with `O_DIRECT | O_DSYNC` instead (no `fdatasync`; B rounded up to a
multiple of 4096), the alternative BENCHMARKS.md compares.

The file is created in DIR (default: the current directory, i.e. the disk the data
directory would be on) and removed afterwards.
"""

import argparse
import mmap
import os
import resource
import time


def busy_ticks():
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return user + nice + system + irq + softirq


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--bytes", type=int, default=6000)
    parser.add_argument("--dir", default=".")
    parser.add_argument("--direct", action="store_true")
    args = parser.parse_args()
    if args.direct:
        args.bytes = -(-args.bytes // 4096) * 4096
    path = os.path.join(args.dir, f".fsync-bench-{os.getpid()}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.pwrite(fd, b"\0" * (args.count * args.bytes + 4096), 0)
        os.fsync(fd)
        if args.direct:
            os.close(fd)
            fd = os.open(path, os.O_RDWR | os.O_DIRECT | os.O_DSYNC)
            record = mmap.mmap(-1, args.bytes)  # page-aligned, as O_DIRECT needs
            record.write(b"x" * args.bytes)
        else:
            record = b"x" * args.bytes
        latencies = []
        usage0, busy0 = resource.getrusage(resource.RUSAGE_SELF), busy_ticks()
        for i in range(args.count):
            started = time.perf_counter()
            os.pwrite(fd, record, i * args.bytes)
            if not args.direct:
                os.fdatasync(fd)
            latencies.append(time.perf_counter() - started)
        usage1, busy1 = resource.getrusage(resource.RUSAGE_SELF), busy_ticks()
    finally:
        os.close(fd)
        os.unlink(path)
    n = args.count
    latencies.sort()
    us = lambda seconds: seconds * 1e6  # noqa: E731
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    how = "O_DIRECT|O_DSYNC pwrite" if args.direct else "pwrite+fdatasync"
    print(
        f"{n} {how} of {args.bytes} B: "
        f"p50 {us(latencies[n // 2]):.0f} us, p99 {us(latencies[int(n * 0.99)]):.0f} us, "
        f"p99.9 {us(latencies[int(n * 0.999)]):.0f} us, max {us(latencies[-1]):.0f} us"
    )
    print(
        f"CPU per write: process user {us(usage1.ru_utime - usage0.ru_utime) / n:.1f} us, "
        f"kernel {us(usage1.ru_stime - usage0.ru_stime) / n:.1f} us; "
        f"machine busy {(busy1 - busy0) * tick_us / n:.1f} us"
    )


if __name__ == "__main__":
    main()
