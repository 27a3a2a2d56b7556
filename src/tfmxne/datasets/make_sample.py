# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Regenerate the sample files shipped in ``tfmxne/datasets/data``.

Run from a checkout that has the shared sample data next to it (``../shared``)::

    python -m tfmxne.datasets.make_sample
    python -m tfmxne.datasets.make_sample --source /path/to/shared/data/sample

It writes, from the MNE ``sample`` subject files (BSD-3-Clause, see
``data/README.md``):

* ``sample_audvis-ave.fif.gz``: the 'Left Auditory' evoked response, baseline
  (None, 0), MEG and EEG channels only, cropped to -0.1..0.4 s;
* ``sample_audvis-cov.fif.gz``: the noise covariance (MEG and EEG channels);
* ``sample-oct4-fwd.fif.gz``: the surface forward solution (oct4 source space,
  508 positions once ``mindist=5`` drops those within 5 mm of the inner skull,
  free orientation, MEG + EEG, three-layer BEM). The forward file keeps the
  source space's triangulated surfaces (1026 vertices and 2048 triangles per
  hemisphere), which the demo's figure draws.
"""

import argparse
import sys
import time
from pathlib import Path

from .sample import CONDITION, COV_FNAME, EVOKED_FNAME, FWD_FNAME

DATA_DIR = Path(__file__).resolve().parent / "data"
TMIN, TMAX = -0.1, 0.4


def default_source():
    """Default location of the shared sample data, ``<repo>/../shared/data/sample``.

    Returns
    -------
    path : pathlib.Path
        The directory (it may not exist).
    """
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "data" / "sample"


def make_sample(source=None, out_dir=None, verbose=False):
    """Write the bundled sample files from the shared sample data.

    Parameters
    ----------
    source : path-like | None
        Directory holding ``sample-ave.fif.gz``, ``sample-cov.fif``,
        ``sample-oct4-src.fif.gz``, ``sample-trans.fif`` and
        ``sample-320-320-320-bem-sol.fif``. ``None``: :func:`default_source`.
    out_dir : path-like | None
        Where to write; ``None``: the package's ``data`` directory.
    verbose : bool
        Print MNE's log.

    Returns
    -------
    fnames : list of pathlib.Path
        The files written.
    """
    import mne

    source = Path(source) if source is not None else default_source()
    out_dir = Path(out_dir) if out_dir is not None else DATA_DIR
    if not source.is_dir():
        raise FileNotFoundError(f"sample data directory not found: {source}")
    out_dir.mkdir(parents=True, exist_ok=True)
    mne_verbose = None if verbose else "warning"

    evoked = mne.read_evokeds(
        source / "sample-ave.fif.gz",
        condition=CONDITION,
        baseline=(None, 0),
        verbose=mne_verbose,
    )
    evoked.pick(["meg", "eeg"], exclude=())
    evoked.crop(TMIN, TMAX)
    with evoked.info._unlock():
        # raw HPI coil recordings (about 3 MB), not needed for source imaging
        evoked.info["hpi_meas"] = []
        evoked.info["hpi_results"] = []
    cov = mne.read_cov(source / "sample-cov.fif", verbose=mne_verbose)
    cov = cov.pick_channels(evoked.ch_names, ordered=True, verbose=mne_verbose)
    src = mne.read_source_spaces(source / "sample-oct4-src.fif.gz", verbose=mne_verbose)
    fwd = mne.make_forward_solution(
        evoked.info,
        source / "sample-trans.fif",
        src,
        source / "sample-320-320-320-bem-sol.fif",
        meg=True,
        eeg=True,
        mindist=5.0,
        verbose=mne_verbose,
    )

    fnames = [out_dir / EVOKED_FNAME, out_dir / COV_FNAME, out_dir / FWD_FNAME]
    mne.write_evokeds(fnames[0], evoked, overwrite=True, verbose=mne_verbose)
    cov.save(fnames[1], overwrite=True, verbose=mne_verbose)
    mne.write_forward_solution(fnames[2], fwd, overwrite=True, verbose=mne_verbose)
    return fnames


def main(argv=None):
    """Command line entry point (``python -m tfmxne.datasets.make_sample``).

    Parameters
    ----------
    argv : list of str | None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        Exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tfmxne.datasets.make_sample",
        description="Regenerate tfmxne's bundled sample data from the MNE sample "
        "subject files.",
    )
    parser.add_argument(
        "--source",
        default=None,
        help=f"directory of the shared sample data (default: {default_source()})",
    )
    parser.add_argument(
        "--out-dir", default=None, help=f"output directory (default: {DATA_DIR})"
    )
    parser.add_argument("--verbose", action="store_true", help="print MNE's log")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        fnames = make_sample(args.source, args.out_dir, args.verbose)
    except FileNotFoundError as exc:
        print(f"make_sample: error: {exc}", file=sys.stderr)
        return 2
    for f in fnames:
        print(f"{f}  {f.stat().st_size / 1e6:.2f} MB")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
