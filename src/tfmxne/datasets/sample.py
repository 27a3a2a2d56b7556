# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The MNE ``sample`` subject, reduced to what a TF-MxNE inversion needs.

Three small files are installed with tfmxne (about 3 MB in all): the
'Left Auditory' evoked response (MEG + EEG, -0.1..0.4 s, baseline (None, 0)),
the noise covariance and a precomputed surface forward solution (oct4 source
space, 508 positions, free orientation, with the source space's triangulated
cortical surfaces for drawing). They derive from MNE-Python's test
files of the ``sample`` subject (BSD-3-Clause); see ``data/README.md``.

Examples
--------
>>> import tfmxne
>>> from tfmxne.datasets import sample
>>> evoked, forward, noise_cov = sample.load()
>>> stc = tfmxne.tf_mixed_norm(evoked.crop(-0.05, 0.3), forward, noise_cov,
...                            alpha=80, l1_ratio=0.03)  # doctest: +SKIP
"""

from pathlib import Path

__all__ = ["data_path", "fnames", "load"]

EVOKED_FNAME = "sample_audvis-ave.fif.gz"
COV_FNAME = "sample_audvis-cov.fif.gz"
FWD_FNAME = "sample-oct4-fwd.fif.gz"
CONDITION = "Left Auditory"

#: The demo's fixed parameters, on the evoked cropped to ``DEMO_CROP``: 3 active
#: positions, one in the right and two in the left auditory cortex (peaks at
#: about 90 and 113 ms). Chosen by inspecting this data set: alpha 72, 75, 78,
#: 80, 82 and 85 (``DEMO_ALPHA_RANGE``) all keep a source in each auditory
#: cortex (5 to 2 sources); at 70 a frontal source joins them.
DEMO_PARAMS = dict(alpha=80.0, l1_ratio=0.03, wsize=64, tstep=4)
DEMO_CROP = (-0.05, 0.3)
DEMO_ALPHA_RANGE = (72.0, 85.0)


def data_path():
    """Directory holding the bundled sample files.

    Returns
    -------
    path : pathlib.Path
        The ``tfmxne/datasets/data`` directory of the installed package.
    """
    return Path(__file__).resolve().parent / "data"


def fnames():
    """Paths of the bundled sample files.

    Returns
    -------
    fnames : dict
        ``{'evoked': ..., 'noise_cov': ..., 'forward': ...}``, each a
        :class:`pathlib.Path` (readable with :func:`mne.read_evokeds`,
        :func:`mne.read_cov` and :func:`mne.read_forward_solution`).
    """
    path = data_path()
    return {
        "evoked": path / EVOKED_FNAME,
        "noise_cov": path / COV_FNAME,
        "forward": path / FWD_FNAME,
    }


def load(verbose=False):
    """Load the bundled sample data: evoked response, forward and noise covariance.

    Each call reads the files again, so the objects returned can be modified
    freely (for example ``evoked.crop(...)``).

    Parameters
    ----------
    verbose : bool | str | int | None
        MNE's verbosity while reading (default ``False``: silent).

    Returns
    -------
    evoked : mne.Evoked
        'Left Auditory' (N=3), 366 channels (306 MEG, 60 EEG), 601.6 Hz,
        -0.1..0.4 s, baseline (None, 0) applied on the original -0.2..0 s.
    forward : mne.Forward
        Surface forward solution, 508 source positions (254 per hemisphere:
        the oct4 positions more than 5 mm inside the inner skull), free
        orientation, head coordinates, MEG + EEG. Its source spaces keep
        their surfaces (1026 vertices and 2048 triangles per hemisphere,
        ``rr`` and ``tris``), which :func:`tfmxne.viz.plot_brain` draws.
    noise_cov : mne.Covariance
        Noise covariance of the 366 MEG and EEG channels.

    Raises
    ------
    FileNotFoundError
        If the data files are not installed (a broken installation).
    """
    import mne

    f = fnames()
    missing = [str(p) for p in f.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            "tfmxne's bundled sample data is missing (broken installation?): "
            + ", ".join(missing)
        )
    evoked = mne.read_evokeds(f["evoked"], condition=CONDITION, verbose=verbose)
    forward = mne.read_forward_solution(f["forward"], verbose=verbose)
    noise_cov = mne.read_cov(f["noise_cov"], verbose=verbose)
    return evoked, forward, noise_cov
