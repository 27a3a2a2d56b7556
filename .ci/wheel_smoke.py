# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The test command of the built wheels (``[tool.cibuildwheel] test-command``).

Solves the bundled demo problem with the installed wheel (no test
dependencies, no source tree) and checks what the demo promises: a certified
solve (duality gap below tol) with a source in each auditory cortex, that is
one active position in each hemisphere at least. Exits non-zero otherwise.
"""

import sys
from pathlib import Path

import tfmxne
from tfmxne.datasets import sample

here = Path(__file__).resolve().parent.parent
if Path(tfmxne.__file__).resolve().is_relative_to(here / "src"):
    sys.exit(f"tfmxne imported from the source tree ({tfmxne.__file__}), not the wheel")

evoked, forward, noise_cov = sample.load()
evoked.crop(*sample.DEMO_CROP)
res = tfmxne.solve(evoked, forward, noise_cov, verbose=False, **sample.DEMO_PARAMS)
stc = res.estimate
per_hemi = [len(v) for v in stc.vertices]
print(
    f"tfmxne {tfmxne.__version__} ({tfmxne.__file__}): {sum(per_hemi)} active "
    f"positions {per_hemi} (lh, rh), gap {res.gap:.2e} <= tol {res.tol:.0e}: "
    f"{res.gap <= res.tol}, {res.elapsed:.2f} s"
)
if not (res.converged and res.gap <= res.tol and min(per_hemi) >= 1):
    sys.exit("the demo problem was not solved as expected")
