# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Time to load the bundled sample data (``tfmxne.datasets.sample.load()``).

Best of ``--repeat`` loads after one warm-up load (the imports). On an idle
machine it takes a fraction of a second; a wall-clock bound has no place in
the test suite, which runs on loaded machines.

    python benchmarks/bench_load.py [--repeat 5]
"""

import argparse
import time

from tfmxne.datasets import sample


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sample.load()
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        sample.load()
        times.append(time.perf_counter() - t0)
    print(f"sample.load(): best {min(times):.3f} s of {args.repeat}")


if __name__ == "__main__":
    main()
