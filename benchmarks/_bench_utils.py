# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Shared helpers of the benchmark scripts: sample data, cached forwards, memory.

Not a benchmark itself. The forward solutions are computed once and cached in
``$TFMXNE_BENCH_CACHE`` (default: ``<tempdir>/tfmxne-bench-cache``), never in the
repository. The sample data are looked up in ``$TFMXNE_SAMPLE``, then in
``../shared/data/sample`` next to the repository.
"""

import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# forward recipes of shared/data/sample/README.md
FWD_KINDS = {
    "surf": dict(kind="surface", pos=None, n_pos=508),
    "vol7": dict(kind="volume", pos=7.0, n_pos=4371),
    "vol5": dict(kind="volume", pos=5.0, n_pos=11942),
}
CONDITION = "Left Auditory"


def jsonable(x):
    """``json.dumps`` default for NumPy scalars and arrays (anything else: str)."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def find_sample(path=None):
    """Folder of the shared sample data (raises if absent)."""
    cands = [path] if path else []
    cands += [
        os.environ.get("TFMXNE_SAMPLE"),
        HERE.parent.parent / "shared" / "data" / "sample",
        HERE.parent / "shared" / "data" / "sample",
    ]
    for cand in cands:
        if cand and (Path(cand) / "sample-ave.fif.gz").exists():
            return Path(cand).resolve()
    raise SystemExit(
        "sample data not found: pass --data or set TFMXNE_SAMPLE "
        "(folder with sample-ave.fif.gz, sample-cov.fif, ...)"
    )


def cache_dir():
    """Cache folder of the forward solutions (created if needed)."""
    env = os.environ.get("TFMXNE_BENCH_CACHE")
    d = Path(env) if env else Path(tempfile.gettempdir()) / "tfmxne-bench-cache"
    d.mkdir(parents=True, exist_ok=True)
    return d


def read_evoked(sample):
    import mne

    return mne.read_evokeds(
        sample / "sample-ave.fif.gz",
        condition=CONDITION,
        baseline=(None, 0),
        verbose=False,
    )


def read_cov(sample):
    import mne

    return mne.read_cov(sample / "sample-cov.fif", verbose=False)


def get_forward(sample, name, log=print):
    """Read the cached forward ``name`` (surf, vol7, vol5); compute it if absent."""
    import mne

    fname = ensure_forward(sample, name, log=log)
    return mne.read_forward_solution(fname, verbose=False)


def ensure_forward(sample, name, log=print):
    """Path of the cached forward ``name``, computed and written first if absent."""
    import mne

    if name not in FWD_KINDS:
        raise ValueError(f"unknown forward {name!r}, expected one of {list(FWD_KINDS)}")
    fname = cache_dir() / f"{name}-fwd.fif"
    if not fname.exists():
        spec = FWD_KINDS[name]
        log(
            f"computing forward {name} (cached afterwards in {fname}); "
            "this takes from a few seconds (surf) to a few minutes (vol5) ..."
        )
        t0 = time.perf_counter()
        info = read_evoked(sample).info
        bem = str(sample / "sample-320-320-320-bem-sol.fif")
        trans = str(sample / "sample-trans.fif")
        if spec["kind"] == "surface":
            src = mne.read_source_spaces(sample / "sample-oct4-src.fif.gz", verbose=False)
        else:
            src = mne.setup_volume_source_space(
                None, pos=spec["pos"], bem=bem, mri=None, verbose=False
            )
        fwd = mne.make_forward_solution(info, trans, src, bem, mindist=5.0, verbose=False)
        # write under a temporary name, then rename: concurrent runs never read
        # a half-written file
        tmp = fname.with_name(f"{name}-tmp{os.getpid()}-fwd.fif")
        mne.write_forward_solution(tmp, fwd, overwrite=True, verbose=False)
        os.replace(tmp, fname)
        log(f"  done in {time.perf_counter() - t0:.0f} s: {fwd['nsource']} positions")
    return fname


def prepare_problem(evoked, fwd, cov, l1_ratio, wsize, tstep, window=0.02, **options):
    """tf_mixed_norm's prepared problem (whitened data ``.M``, gain scaled by
    alpha_max ``.gain``, ``.n_orient``) with the options given (MNE's defaults
    otherwise): ``tfmxne._problem`` (older installs: ``tfmxne._pipeline``)."""
    try:
        from tfmxne import _options, _problem
    except ImportError:  # an install before the prepared problem (A/B runs)
        from tfmxne._pipeline import _prepare

        o = dict(loose="auto", depth=0.8, weights_min=0.0, pca=True, rank=None)
        o.update(options)
        return _prepare(
            evoked, fwd, cov, o["loose"], o["depth"], None, o["weights_min"],
            o["pca"], o["rank"], window, l1_ratio, wsize, tstep,
        )  # fmt: skip
    opts = _options.check_options(dict(options, window=window, wsize=wsize, tstep=tstep))
    fwd_p = _problem.prepare_forward(evoked.info, fwd, cov, opts)
    return _problem.prepare(fwd_p, evoked, opts, l1_ratio)


def subsample_forward(fwd, step):
    """Keep every ``step``-th source position of ``fwd`` (all when step == 1)."""
    import mne

    if step == 1:
        return fwd
    verts = [s["vertno"] for s in fwd["src"]]
    keys = np.concatenate([np.c_[np.full(len(v), h), v] for h, v in enumerate(verts)])
    keys = keys[::step]
    vertices = [keys[keys[:, 0] == h, 1] for h in range(len(verts))]
    if fwd["src"].kind == "surface":
        stc = mne.SourceEstimate(np.zeros((len(keys), 1)), vertices, 0.0, 1.0)
    else:
        stc = mne.VolSourceEstimate(np.zeros((len(keys), 1)), vertices, 0.0, 1.0)
    return mne.forward.restrict_forward_to_stc(fwd, stc)


def resample_to_n_times(evoked, n_times):
    """Resample ``evoked`` so that it has ``n_times`` samples over the same span."""
    sfreq = n_times * evoked.info["sfreq"] / len(evoked.times)
    out = evoked.copy().resample(sfreq, verbose=False)
    return out


# ---------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------
def maxrss_mb():
    """Peak resident set size of this process so far (MB), as getrusage reports."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 2.0**20


def current_rss_mb():
    """Current resident set size (MB), or nan where /proc is absent."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2.0**20
    except (OSError, ValueError):
        return float("nan")


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0).

    After this, ``getrusage(RUSAGE_SELF).ru_maxrss`` reports the peak since the
    reset, so the peak of one call can be read apart from the peak of the data
    loading before it. Returns whether the reset worked.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------
def environment():
    """Versions, CPU and BLAS threading of this process (for the JSON output)."""
    import mne
    import scipy
    from threadpoolctl import threadpool_info

    import tfmxne

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return dict(
        python=platform.python_version(),
        platform=platform.platform(),
        machine=platform.machine(),
        processor=platform.processor(),
        cpu_count=os.cpu_count(),
        affinity=(
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        ),
        loadavg=load,
        numpy=np.__version__,
        scipy=scipy.__version__,
        mne=mne.__version__,
        tfmxne=tfmxne.__version__,
        blas=[
            {
                k: d.get(k)
                for k in (
                    "internal_api",
                    "version",
                    "num_threads",
                    "threading_layer",
                    "architecture",
                )
            }
            for d in threadpool_info()
            if d.get("user_api") == "blas"
        ],
        env_threads={
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            if k in os.environ
        },
    )


def warn_if_busy(log=print):
    """Print a warning when the machine is not idle (benchmarks need it idle)."""
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        return
    if load1 > 0.5:
        log(
            f"WARNING: load average {load1:.2f} > 0.5: other processes are running; "
            "timings will be unreliable (see benchmarks/README.md)"
        )


def fmt_time(t):
    if t is None or not np.isfinite(t):
        return "-"
    if t < 1:
        return f"{t * 1000:.0f} ms"
    if t < 100:
        return f"{t:.2f} s"
    return f"{t:.0f} s"


# ---------------------------------------------------------------------------
# TF-MxNE primal objective (independent NumPy code, MNE's STFT as the frame)
# ---------------------------------------------------------------------------
def _tf_dicts(wsize, tstep, n_times):
    ws = [int(w) for w in np.atleast_1d(wsize)]
    ts = [int(t) for t in np.atleast_1d(tstep)]
    if len(ws) != len(ts):
        raise ValueError(f"wsize {ws} and tstep {ts} differ in length")
    return [(w, t, w // 2 + 1, -(-n_times // t)) for w, t in zip(ws, ts)]


def tf_synthesis(Z, wsize, tstep, n_times):
    """Signals ``X = Phi^T Z`` from coefficients in MNE's layout.

    ``Z`` has, per dictionary, the ``(n_freqs, n_steps)`` STFT of each row
    flattened frequency-major, dictionaries concatenated; each dictionary is
    scaled by ``1 / sqrt(n_dicts)`` (MNE's ``_PhiT``). Uses
    :func:`mne.time_frequency.istft`.
    """
    from mne.time_frequency import istft

    Z = np.atleast_2d(Z)
    dicts = _tf_dicts(wsize, tstep, n_times)
    X = np.zeros((Z.shape[0], n_times))
    off = 0
    for _, t, nf, ns in dicts:
        X += istft(Z[:, off : off + nf * ns].reshape(len(Z), nf, ns), t, n_times)
        off += nf * ns
    if off != Z.shape[1]:
        raise ValueError(f"Z has {Z.shape[1]} coefficients per row, expected {off}")
    return X / np.sqrt(len(dicts))


def tf_multiplicity(wsize, tstep, n_times):
    """Weight of each coefficient in MNE's norms: 1 for the DC and Nyquist
    frequencies, 2 for the others (they stand for a frequency and its negative)."""
    out = []
    for _, _, nf, ns in _tf_dicts(wsize, tstep, n_times):
        c = np.full((nf, ns), 2.0)
        c[[0, -1]] = 1.0
        out.append(c.ravel())
    return np.concatenate(out)


def tf_primal_objective(
    M, G, Z, active_set, alpha_space, alpha_time, wsize, tstep, n_orient
):
    """TF-MxNE primal objective at the coefficients ``Z`` (MNE's layout).

    ``0.5 ||M - G_A Phi^T Z||_F^2 + alpha_space sum_j ||Z_j||_2
    + alpha_time sum_{j,k} ||Z_jk||_2``, with ``Z_j`` the coefficients of
    position ``j`` (all its orientations) and ``Z_jk`` those of coefficient
    ``k``; each norm counts a coefficient with its multiplicity in the full
    spectrum (:func:`tf_multiplicity`), as MNE's ``norm_l21_tf`` and
    ``norm_l1_tf`` do. Written from the definition: shares no code with either
    solver. ``Z`` must be the solver's coefficients, not ``Phi X``: the frame is
    redundant, so ``X = Phi^T Z`` does not determine ``Z`` and the objective at
    ``Phi X`` is larger. Returns ``(p_obj, X)``.
    """
    M = np.asarray(M, dtype=np.float64)
    G = np.asarray(G, dtype=np.float64)
    active_set = np.asarray(active_set, dtype=bool)
    n_times = M.shape[1]
    n_act = int(active_set.sum())
    if n_act == 0:
        return 0.5 * float(np.sum(M**2)), np.zeros((0, n_times))
    if n_act % n_orient:
        raise ValueError(f"{n_act} active rows is not a multiple of n_orient={n_orient}")
    Z = np.asarray(Z, dtype=np.complex128)
    if Z.shape[0] != n_act:
        raise ValueError(f"Z has {Z.shape[0]} rows, the active set {n_act}")
    X = tf_synthesis(Z, wsize, tstep, n_times)
    R = M - G[:, active_set] @ X
    c = tf_multiplicity(wsize, tstep, n_times)
    mag2 = (Z.real**2 + Z.imag**2).reshape(n_act // n_orient, n_orient, -1).sum(1)
    l21 = float(np.sum(np.sqrt(mag2 @ c)))
    l1 = float(np.sum(np.sqrt(mag2) @ c))
    return 0.5 * float(np.sum(R * R)) + alpha_space * l21 + alpha_time * l1, X
