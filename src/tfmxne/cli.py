# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The ``tfmxne`` command line.

``tfmxne demo``
    TF-MxNE on the sample data shipped with tfmxne: a short report and a figure.
``tfmxne run``
    TF-MxNE on your own evoked, forward and noise covariance files; writes the
    source estimate, the residual (and dipoles), a report and a figure.

Run ``tfmxne <command> --help`` for the options. Errors the user can fix (a
missing file, an unknown condition, files that do not belong together, a bad
parameter value) print one line starting with ``tfmxne: error:`` on stderr
and exit with status 2; ``--verbose`` adds the traceback.
"""

import argparse
import contextlib
import dataclasses
import logging
import os
import re
import shutil
import sys
import tempfile
import textwrap
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

from . import _options

__all__ = [
    "main",
    "build_parser",
    "format_report",
    "make_progress",
    "CLIError",
    "Progress",
]

EXIT_OK = 0
EXIT_FAILURE = 1  # unexpected internal error
EXIT_USAGE = 2  # the user can fix it: bad arguments, files, parameter values

PROG = "tfmxne"

# defaults of `tfmxne run`: alpha (and l1_ratio) chosen automatically, as the
# library's default (alpha=None); a given --alpha is solved with l1_ratio
# DEFAULT_L1_RATIO unless --l1-ratio is given (MNE's TF-MxNE example). The
# demo's fixed parameters are tfmxne.datasets.sample.DEMO_PARAMS
DEFAULT_ALPHA = None
DEFAULT_L1_RATIO = 0.03
MAX_TABLE_ROWS = 20

_IGNORED_WARNINGS = ("does not conform to MNE naming conventions",)


class CLIError(Exception):
    """An error the user can fix; reported on one line with exit status 2."""


# --------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------
class _ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``tfmxne: error: ...`` and status 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _checked(parse, check, name):
    """An argparse type: ``parse`` the text, then ``check`` the value.

    The parsers and the checks are the table's (:mod:`tfmxne._options`), so that
    an option accepts what the parameter accepts, with the same message (naming
    the parameter and the value) after ``argument --option:``.
    """

    def convert(text):
        try:
            value = parse(text)
            if check is not None:
                check(value)
        except (ValueError, TypeError) as exc:
            raise argparse.ArgumentTypeError(_one_line(exc)) from None
        return value

    convert.__name__ = name  # argparse names the type in some messages
    return convert


def _shown(value):
    """A default as the help text shows it."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _add_option(group, opt, default, shown=None):
    """The argument of one option of the table (its default: ``default``, as the
    help shows it: ``shown``)."""
    cli = opt.cli
    flag = "--" + opt.name.replace("_", "-")
    shown = shown or cli.shown or (f"--{opt.name}" if cli.flag else _shown(default))
    kw = dict(default=default, help=f"{cli.help} (default: {shown})")
    if cli.flag:
        kw["action"] = argparse.BooleanOptionalAction
    elif cli.choices is not None:
        kw["choices"] = cli.choices
    elif cli.many:  # the words are checked together, by _solver_params
        many = list(default) if isinstance(default, list | tuple) else [default]
        kw.update(nargs="+", default=many)
        kw["type"] = _checked(cli.parse, None, opt.name)
    elif cli.parse is not None:
        kw["type"] = _checked(cli.parse, opt.check, opt.name)
    if cli.metavar is not None:
        kw["metavar"] = cli.metavar
    group.add_argument(flag, **kw)


def _condition(text):
    return int(text) if text.strip().lstrip("-").isdigit() else text


#: How the help of `tfmxne run` shows its automatic regularisation.
_AUTO_SHOWN = {
    "alpha": "chosen automatically, as tfmxne.solve's alpha=None (the "
    "'signal-share' criterion over 90 to 5 %% of alpha_max); 'auto' says so",
    "l1_ratio": f"chosen with alpha when alpha is automatic, {DEFAULT_L1_RATIO:g} "
    "with a given --alpha",
}


def _regularisation(opt):
    """The table's option ``alpha`` or ``l1_ratio`` taking 'auto' (None) too."""
    check = opt.check
    return dataclasses.replace(
        opt,
        check=lambda v: v if v is None else check(v),
        cli=dataclasses.replace(
            opt.cli, parse=_options._keyword_or({"auto": None}, opt.cli.parse)
        ),
    )


def _add_solver_options(parser, alpha=DEFAULT_ALPHA, l1_ratio=None):
    g = parser.add_argument_group(
        "TF-MxNE parameters (those of mne.inverse_sparse.tf_mixed_norm)"
    )
    defaults = dict(_options.DEFAULTS, alpha=alpha, l1_ratio=l1_ratio)
    for opt in _options.REGULARISATION:
        opt = _regularisation(opt)
        shown = _AUTO_SHOWN[opt.name] if defaults[opt.name] is None else None
        _add_option(g, opt, defaults[opt.name], shown)
    for opt in _options.OPTIONS:
        _add_option(g, opt, defaults[opt.name])
    g.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="precision of the solver iterations (default: float64)",
    )
    return g


def _add_common_options(parser, fig_default):
    g = parser.add_argument_group("output and messages")
    g.add_argument(
        "--compare-mne",
        action="store_true",
        help="also run mne.inverse_sparse.tf_mixed_norm on the same "
        "problem and report its time, the speed-up and the difference "
        "between the estimates (slow: MNE takes tens of seconds)",
    )
    g.add_argument(
        "--no-figure",
        dest="figure",
        action="store_false",
        help=f"do not write the figure ({fig_default})",
    )
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing but errors and warnings (no report, no progress bar)",
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print MNE's and tfmxne's log, and the traceback of errors",
    )


def build_parser():
    """The argument parser of the ``tfmxne`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser, with the sub-commands ``demo``, ``run`` and ``sys-info``.
    """
    import tfmxne

    parser = _ArgumentParser(
        prog=PROG,
        description="tfmxne: fast time-frequency mixed-norm estimates (TF-MxNE) for "
        "M/EEG source imaging, a compiled drop-in for "
        "mne.inverse_sparse.tf_mixed_norm.",
        epilog="Start with 'tfmxne demo', then 'tfmxne run --help'.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {tfmxne.__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_demo(sub)
    _add_run(sub)
    _add_sys_info(sub)
    return parser


def _add_demo(sub):
    """The ``demo`` sub-command."""
    from tfmxne.datasets.sample import DEMO_CROP, DEMO_PARAMS

    demo = sub.add_parser(
        "demo",
        help="TF-MxNE on the bundled sample data (report and figure)",
        description="Run TF-MxNE on the sample data shipped with tfmxne (MNE's "
        "'sample' subject, 'Left Auditory' averaged over 3 trials, MEG + "
        "EEG, oct4 cortical source space of 508 positions), print a "
        "report of the active sources and the goodness of fit, and write "
        "a figure: whitened data and residual, the sources on the "
        "cortical surfaces, their time courses and time-frequency maps. "
        f"alpha is fixed at {DEMO_PARAMS['alpha']:g} for this data set "
        "(one source in each auditory cortex); change it with --alpha.",
    )
    demo.add_argument(
        "--out",
        default="tfmxne-demo.png",
        metavar="FIG.png",
        help="figure file; the format follows the extension (default: tfmxne-demo.png)",
    )
    demo.add_argument(
        "--tmin",
        type=float,
        default=DEMO_CROP[0],
        help=f"start of the time window, s (default: {DEMO_CROP[0]})",
    )
    demo.add_argument(
        "--tmax",
        type=float,
        default=DEMO_CROP[1],
        help=f"end of the time window, s (default: {DEMO_CROP[1]})",
    )
    _add_solver_options(
        demo, alpha=DEMO_PARAMS["alpha"], l1_ratio=DEMO_PARAMS["l1_ratio"]
    )
    _add_common_options(demo, "--out")
    demo.set_defaults(func=_cmd_demo)


def _add_run(sub):
    """The ``run`` sub-command."""
    run = sub.add_parser(
        "run",
        help="TF-MxNE on your evoked, forward and noise covariance files",
        description="Run TF-MxNE on an evoked response and write the source "
        "estimate (BASENAME-lh.stc/-rh.stc for surface source spaces, "
        "BASENAME-vl.stc for volumes, BASENAME-stc.h5 for vector and "
        "mixed estimates), the residual (BASENAME-res-ave.fif), with "
        "--dipoles one dipole file per active source "
        "(BASENAME-dipNN.dip), and a figure (BASENAME.png). Nothing is "
        "written if the run fails. The options are those of "
        "mne.inverse_sparse.tf_mixed_norm, with dashes.",
        epilog="Example: tfmxne run --evoked sample-ave.fif --condition "
        "'Left Auditory' --forward sample-fwd.fif --cov sample-cov.fif "
        "--tmin -0.05 --tmax 0.3 --out left_aud (alpha chosen automatically; "
        "--alpha 40 --l1-ratio 0.03 fixes it). Two conditions with one support: "
        "--condition 'Left Auditory' 'Left visual' --joint.",
    )
    _add_run_files(run)
    g = run.add_argument_group("data selection")
    g.add_argument(
        "--tmin",
        type=float,
        default=None,
        help="crop the evoked response from this time, s",
    )
    g.add_argument(
        "--tmax",
        type=float,
        default=None,
        help="crop the evoked response up to this time, s",
    )
    g.add_argument(
        "--baseline",
        nargs=2,
        default=None,
        metavar=("BMIN", "BMAX"),
        help="apply a baseline correction on [BMIN, BMAX] s ('none' for "
        "the start or end of the data), before cropping (default: "
        "the data as stored)",
    )
    g = _add_solver_options(run)
    g.add_argument(
        "--on-empty",
        choices=("raise", "warn"),
        default="raise",
        help="when no source survives: stop with an error (raise), or warn and "
        "write an empty estimate (no vertices) and the residual (default: raise)",
    )
    _add_common_options(run, "BASENAME.png")
    run.set_defaults(func=_cmd_run)


def _add_run_files(run):
    """The input and output files of ``run``."""
    g = run.add_argument_group("input and output files")
    g.add_argument(
        "--evoked",
        required=True,
        metavar="FILE",
        help="evoked responses (FIF, e.g. *-ave.fif)",
    )
    g.add_argument(
        "--condition",
        type=_condition,
        nargs="+",
        default=None,
        metavar="NAME",
        help="which evoked response(s) of the file: comments (names) or "
        "indices; needed when the file holds several. Several conditions are "
        "solved one after the other (or together with --joint), with one set of "
        "output files each: BASENAME-CONDITION-...",
    )
    g.add_argument(
        "--joint",
        action="store_true",
        help="solve the conditions of --condition jointly (tfmxne.solve_joint): "
        "one support shared by all, each condition with its own time courses; "
        "alpha is in percent of the joint problem's alpha_max",
    )
    g.add_argument(
        "--forward",
        required=True,
        metavar="FILE",
        help="forward solution (FIF, e.g. *-fwd.fif)",
    )
    g.add_argument(
        "--cov",
        required=True,
        metavar="FILE",
        help="noise covariance (FIF, e.g. *-cov.fif)",
    )
    g.add_argument(
        "--out",
        required=True,
        metavar="BASENAME",
        help="base name of the output files, for example "
        "results/subject01 (the directory is created if needed)",
    )
    g.add_argument(
        "--dipoles",
        action="store_true",
        help="also write the active sources as dipoles, one file per "
        "source (BASENAME-dipNN.dip or .bdip)",
    )
    g.add_argument(
        "--dipole-format",
        choices=("dip", "bdip"),
        default="dip",
        help="dipole file format: text (dip, amplitudes in nAm with 3 "
        "decimals) or binary Xfit (bdip) (default: dip)",
    )


def _add_sys_info(sub):
    """The ``sys-info`` sub-command."""
    info = sub.add_parser(
        "sys-info",
        help="print the environment, for a bug report",
        description="Print MNE's system information (mne.sys_info), then tfmxne's "
        "version, the threads one solve uses and the BLAS libraries loaded (versions, "
        "kernels, threads).",
    )
    info.add_argument(
        "--show-paths",
        action="store_true",
        help="also print where each module and library was loaded from",
    )
    info.set_defaults(func=_cmd_sys_info)


# --------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------
class Progress:
    """Receiver of the progress events of a solve (does nothing; subclass it).

    The command line gives it to :func:`tfmxne.solve` as ``progress``: it is
    called with each :class:`tfmxne.ProgressEvent` of the solve (outer
    iterations, and reweightings with ``--n-tfmxne-iter`` > 1), then
    :meth:`close` is called once.
    """

    def __call__(self, event):
        """One step of the solve is done (a :class:`tfmxne.ProgressEvent`)."""

    def close(self):
        """The solve ended (successfully or not)."""


class _TqdmProgress(Progress):
    """The tqdm bar of :mod:`tfmxne._progress`, counting ``count`` events."""

    def __init__(self, desc, count, file):
        from ._progress import TqdmBar

        self._bar = TqdmBar(desc, count, file=file)

    def __call__(self, event):
        self._bar(event)

    def close(self):
        self._bar.close()


def make_progress(enabled=True, iterative=False, auto=False):
    """A progress display: a tqdm bar on a terminal, else nothing.

    Parameters
    ----------
    enabled : bool
        ``False``: a silent :class:`Progress`.
    iterative : bool
        The solve is irTF-MxNE (``n_tfmxne_iter > 1``): the bar counts the
        reweightings (the outer iterations update the gap shown); otherwise
        it counts the outer working-set iterations.
    auto : bool
        alpha is chosen automatically: the bar counts the solves of the
        choice.

    Returns
    -------
    progress : Progress
        A tqdm bar (on stderr) where the library's ``progress='auto'`` draws
        one (:func:`tfmxne._progress.bar_enabled`: a terminal, tqdm installed,
        MNE's ``MNE_TQDM`` not ``'off'``, ``TFMXNE_NO_PROGRESS`` unset),
        otherwise a silent :class:`Progress`.
    """
    from ._progress import bar_enabled

    if not bar_enabled(quiet=not enabled):
        return Progress()
    if auto:
        return _TqdmProgress("alpha selection", "alpha", sys.stderr)
    if iterative:
        return _TqdmProgress("irTF-MxNE", "reweighting", sys.stderr)
    return _TqdmProgress("TF-MxNE", "outer", sys.stderr)


class _WarningCollector(logging.Handler):
    """Keeps MNE's logged warnings, printed at the end as ``tfmxne: warning:``."""

    _tfmxne = True

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        if record.levelno < logging.ERROR:
            self.messages.append(record.getMessage())


def _below_error(record):
    return record.levelno >= logging.ERROR


@contextlib.contextmanager
def _mne_logging(verbose, collector=None):
    """MNE's logging for the command.

    Without ``verbose`` MNE's own handlers print errors only: its warnings are
    gathered by ``collector`` (and by :mod:`warnings`) and printed once at the
    end.
    """
    from mne.utils import logger

    old_level = logger.level
    ours = [collector] if collector is not None else []
    for h in ours:
        logger.addHandler(h)
    filtered = []
    if not verbose:
        for h in logger.handlers:
            if not getattr(h, "_tfmxne", False) and _below_error not in h.filters:
                h.addFilter(_below_error)
                filtered.append(h)
    level = logging.INFO if verbose else logging.WARNING
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old_level)
        for h in ours:
            logger.removeHandler(h)
        for h in filtered:
            h.removeFilter(_below_error)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def _check_file(path, what):
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{what} file not found: {path}")
    if not p.is_file():
        raise CLIError(f"{what} is not a file: {path}")
    return p


def _read(what, path, reader):
    try:
        return reader(path)
    except CLIError:
        raise
    except Exception as exc:
        raise CLIError(f"cannot read the {what} file {path}: {_one_line(exc)}") from exc


def _read_evoked(path, condition):
    """The evoked responses ``condition`` (a list of names or indices, or None)
    of the file: a list."""
    import mne

    def read(p):
        return mne.read_evokeds(p, verbose=False)

    evokeds = _read("evoked", path, read)
    names = [e.comment for e in evokeds]
    listing = ", ".join(repr(n) for n in names)
    if condition is None:
        if len(evokeds) > 1:
            raise CLIError(
                f"{path} holds {len(evokeds)} evoked responses ({listing}); choose "
                "one (or several) with --condition"
            )
        return evokeds[:1]
    out = []
    for cond in condition:
        if isinstance(cond, int):
            if not -len(evokeds) <= cond < len(evokeds):
                raise CLIError(
                    f"condition index {cond} out of range: {path} holds "
                    f"{len(evokeds)} evoked response(s) ({listing})"
                )
            ev = evokeds[cond]
        else:
            matches = [e for e in evokeds if e.comment == cond]
            if not matches:
                raise CLIError(f"unknown condition {cond!r}: {path} holds {listing}")
            ev = matches[0]
        if any(e is ev for e in out):
            raise CLIError(f"--condition names {ev.comment!r} twice")
        out.append(ev)
    return out


def _slug(evoked, k):
    """A file-name part for a condition: its comment, letters and digits kept."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", str(evoked.comment or "")).strip("_")
    return text or f"condition{k}"


def _parse_baseline(values):
    if values is None:
        return None
    out = []
    for v in values:
        if v.lower() == "none":
            out.append(None)
        else:
            try:
                out.append(float(v))
            except ValueError:
                raise CLIError(
                    f"--baseline: expected seconds or 'none', got {v!r}"
                ) from None
    return tuple(out)


def _solver_params(args):
    """The options of tf_mixed_norm given on the command line (weights aside: read
    from their file by the command), checked."""
    params = {}
    for opt in _options.REGULARISATION + _options.OPTIONS:
        if opt.name == "weights":
            continue
        value = getattr(args, opt.name)
        if opt.cli.join is not None:  # several words: one value, checked here
            value = opt.cli.join(value)
            try:
                if opt.check is not None:
                    opt.check(value)
            except (ValueError, TypeError) as exc:
                raise CLIError(f"--{opt.name}: {_one_line(exc)}") from exc
        params[opt.name] = value
    try:
        _options.check_options(params)
    except (ValueError, TypeError) as exc:
        raise CLIError(_one_line(exc)) from exc
    return params


def _read_weights(path):
    import mne

    if path is None:
        return None
    p = _check_file(path, "weights")

    def read(p):
        if p.suffix == ".npy":
            return np.load(p, allow_pickle=False)
        return mne.read_source_estimate(p)

    return _read("weights", p, read)


def _crop(evoked, tmin, tmax):
    t0, t1 = evoked.times[0], evoked.times[-1]
    lo = t0 if tmin is None else tmin
    hi = t1 if tmax is None else tmax
    if lo > hi:
        raise CLIError(f"--tmin ({lo} s) must be before --tmax ({hi} s)")
    if hi < t0 or lo > t1:
        raise CLIError(
            f"the time window {lo}..{hi} s is outside the data ({t0:.3f}..{t1:.3f} s)"
        )
    try:
        evoked.crop(tmin, tmax)
    except ValueError as exc:
        raise CLIError(f"cannot crop the evoked response: {_one_line(exc)}") from exc
    if len(evoked.times) < 2:
        raise CLIError(
            f"the time window {lo}..{hi} s keeps {len(evoked.times)} sample(s) of the "
            "data; TF-MxNE needs at least 2"
        )
    return evoked


def _is_auto(params):
    return params["alpha"] is None or params["l1_ratio"] is None


def _solve(evokeds, forward, noise_cov, params, args, quiet, joint=False):
    """tfmxne.solve on each evoked (or tfmxne.solve_joint on all) with a progress
    bar: the results and the seconds each call took; user errors become
    CLIError."""
    import tfmxne

    kw = dict(return_residual=True, dtype=np.dtype(args.dtype), **params)
    kw["on_empty"] = getattr(args, "on_empty", "raise")
    pkw = dict(enabled=not quiet, iterative=params["n_tfmxne_iter"] > 1)
    if _is_auto(params):
        pkw["auto"] = True
    calls = [evokeds] if joint else [[ev] for ev in evokeds]
    results, seconds = [], []
    for evs in calls:
        progress = make_progress(**pkw)
        t0 = time.perf_counter()
        try:
            if joint:
                out = tfmxne.solve_joint(evs, forward, noise_cov, progress=progress, **kw)
            else:
                out = [tfmxne.solve(evs[0], forward, noise_cov, progress=progress, **kw)]
        except tfmxne.NoActiveSourcesError as exc:
            msg = _one_line(exc)
            if "alpha" not in msg:
                msg += " Try a smaller --alpha."
            raise CLIError(msg) from exc
        except (ValueError, TypeError) as exc:
            raise CLIError(_one_line(exc)) from exc
        finally:
            progress.close()
        results += out
        seconds += [time.perf_counter() - t0] * len(out)
    return results, seconds


def _choice_note(result, seconds, given):
    """The report's lines on how alpha (and l1_ratio) were chosen."""
    sel = result.selection
    if sel is None:
        return []
    what = "alpha and l1_ratio" if given["alpha"] is None else "l1_ratio"
    if given["alpha"] is None and given["l1_ratio"] is not None:
        what = "alpha"
    return _wrap(
        f"{what} chosen automatically ({sel['criterion']!r}, the library's default; "
        f"--alpha A --l1-ratio R fixes them): alpha={result.alpha:.4g} % of alpha_max, "
        f"l1_ratio={result.l1_ratio:g}, in {sel['n_solves']} solves and "
        f"{seconds:.2f} s",
        width=86,
    )


def _compare_mne(evoked, forward, noise_cov, params, result):
    """Run MNE's tf_mixed_norm on the same problem; a list of report lines."""
    import tfmxne

    lines = ["", "MNE-Python comparison (mne.inverse_sparse.tf_mixed_norm):"]
    try:
        cmp = tfmxne.compare_with_mne(evoked, forward, noise_cov, result, **params)
    except Exception as exc:
        lines.append(f"  MNE failed: {_one_line(exc)}")
        return lines
    lines.append(f"  MNE time:      {cmp['mne_time']:8.2f} s")
    lines.append(
        f"  tfmxne time:   {cmp['tfmxne_time']:8.2f} s   (speed-up x{cmp['speedup']:.1f})"
    )
    if cmp["same_support"]:
        lines.append(
            f"  same {sum(len(v) for v in cmp['common'])} active sources; "
            f"relative difference of the estimates "
            f"{cmp['relative_difference']:.2e}"
        )
    else:
        lines.append("  different active sources (vertices per source space):")
        labels = [_space_label(s) for s in forward["src"]]
        for lab, common, ours, theirs in zip(
            labels, cmp["common"], cmp["only_tfmxne"], cmp["only_mne"]
        ):
            lines.append(
                f"    {lab:>8}: {len(common)} in common; only tfmxne "
                f"{_short_list(ours)}; only MNE {_short_list(theirs)}"
            )
    if cmp.get("summary"):  # which answer is closer to the optimum, by how much
        lines.extend(
            textwrap.wrap(cmp["summary"], 86, initial_indent="  ", subsequent_indent="  ")
        )
    return lines


def _short_list(values, n_max=12):
    values = [int(v) for v in values]
    if len(values) <= n_max:
        return str(values)
    return str(values[:n_max])[:-1] + f", ... ({len(values)} in all)]"


def _space_label(s):
    from .viz import _space_label as lab

    return lab(s)


def format_report(result, evoked, forward, params, title, notes=(), elapsed=None):
    """The text report of a TF-MxNE result.

    Parameters
    ----------
    result : TFMxNEResult
        The output of :func:`tfmxne.solve`.
    evoked : Evoked
        The data given to the solve.
    forward : Forward
        The forward solution given to the solve.
    params : dict
        The solver parameters (for the header).
    title : str
        First line.
    notes : sequence of str
        Lines printed after the parameters (for example why they were chosen).
    elapsed : float | None
        Seconds the whole call took (an automatic choice of alpha: all its
        solves); ``None``: the solve's own time (``result.elapsed``).

    Returns
    -------
    report : str
        Several lines of text.
    """
    from mne.io.constants import FIFF

    from .viz import goodness_of_fit, source_table

    frames = {FIFF.FIFFV_COORD_HEAD: "head", FIFF.FIFFV_COORD_MRI: "MRI"}
    frame = frames.get(int(forward["coord_frame"]), "forward's")
    times = result.times
    est = result.estimate
    rows = source_table(est, forward)
    n = len(rows)
    wsize, tstep = params["wsize"], params["tstep"]
    w = max([5] + [len(r["space"]) for r in rows])
    space = "hemi" if rows and all(r["space"] in ("lh", "rh") for r in rows) else "space"
    lines = [
        title,
        f"  data: {len(result.residual.ch_names) if result.residual is not None else '?'} "
        f"channels used, {len(times)} samples, {1e3 * times[0]:.0f}..{1e3 * times[-1]:.0f}"
        f" ms at {evoked.info['sfreq']:.1f} Hz",
        f"  source space: {forward['nsource']} positions ({forward['src'].kind}), "
        f"estimate: {type(est).__name__}",
        f"  alpha={params['alpha']:g} % of alpha_max, l1_ratio={params['l1_ratio']:g}, "
        f"wsize={wsize}, tstep={tstep}, n_tfmxne_iter={params['n_tfmxne_iter']}",
    ]
    lines += [f"  {note}" for note in notes]
    spread = float(np.ptp(np.asarray(forward["source_rr"]), axis=0).max())
    if forward["nsource"] > 1 and spread < 1e-3:
        lines.append(
            f"  note: all source positions lie within {1e3 * spread:.2f} mm of each other "
            "(a degenerate source space; positions are not anatomical)"
        )
    lines += [
        "",
        f"{n} active source{'s' if n != 1 else ''} (position in mm, {frame} coordinates; "
        "strongest first):",
        f"  {space:>{w}} {'vertex':>7} {'x':>7} {'y':>7} {'z':>7} {'peak (ms)':>10} "
        f"{'peak (nAm)':>11}",
    ]
    rows = sorted(rows, key=lambda r: -abs(r["amplitude"]))
    for r in rows[:MAX_TABLE_ROWS]:
        x, y, z = 1e3 * r["pos"]
        lines.append(
            f"  {r['space']:>{w}} {r['vertex']:>7d} {x:7.1f} {y:7.1f} {z:7.1f} "
            f"{1e3 * r['time']:10.1f} {1e9 * r['amplitude']:11.2f}"
        )
    if n > MAX_TABLE_ROWS:
        lines.append(f"  ... and {n - MAX_TABLE_ROWS} more")
    conv = "converged" if result.converged else "NOT converged (raise --maxit or --tol)"
    nave = evoked.nave if params.get("pca", True) and evoked.nave else None
    gof = goodness_of_fit(result, nave=nave)
    parts = []
    if gof["post"] is not None:
        parts.append(f"{100 * gof['post']:.1f} % after the stimulus (t > 0)")
    if n:
        parts.append(
            f"{100 * gof['peak']:.1f} % at the peak of the fitted response "
            f"({1e3 * gof['peak_time']:.0f} ms)"
        )
    parts.append(f"{100 * gof['whole']:.1f} % over the whole window")
    lines += ["", "explained variance (whitened data, as the solver fits them):"]
    lines += _wrap(", ".join(parts))
    if nave is not None and gof.get("noise_post") is not None:
        text = (
            f"The evoked response is an average of {evoked.nave} trial"
            f"{'s' if evoked.nave != 1 else ''}, so its whitened data are noisy: "
            f"noise alone is expected to make up {100 * min(gof['noise_post'], 1):.0f}"
            " % of their energy after the stimulus"
        )
        if n and gof.get("noise_peak") is not None:
            text += f" ({100 * min(gof['noise_peak'], 1):.0f} % at the peak)"
        lines += _wrap(text + ", which a good fit leaves in the residual.")
    lines.append(f"duality gap: {result.gap:.3g} (tolerance {result.tol:.3g}): {conv}")
    if elapsed is None:
        lines.append(
            f"time: {result.elapsed:.2f} s ({result.n_iter} block coordinate descent "
            "epochs)"
        )
    else:
        lines.append(
            f"time: {elapsed:.2f} s in all; the solve kept: {result.elapsed:.2f} s "
            f"({result.n_iter} block coordinate descent epochs)"
        )
    return "\n".join(lines)


def _wrap(text, width=88):
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent="  ", subsequent_indent="  ")


@contextlib.contextmanager
def _staging(out_dir):
    """A temporary directory next to the outputs; removed on exit."""
    tmp = tempfile.mkdtemp(prefix=".tfmxne-", dir=out_dir)
    try:
        yield Path(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _commit(staged, out_dir):
    """Move the staged files into ``out_dir``; all or nothing."""
    moved = []
    try:
        for f in sorted(staged.iterdir()):
            dest = Path(out_dir) / f.name
            os.replace(f, dest)
            moved.append(dest)
    except OSError:
        for m in moved:
            with contextlib.suppress(OSError):
                m.unlink()
        raise
    return moved


def _check_out_dir(path, what):
    """The directory of an output path, checked (it is created when writing)."""
    d = Path(path).parent if Path(path).parent != Path("") else Path(".")
    if d.is_dir():
        if not os.access(d, os.W_OK):
            raise CLIError(f"the directory of {what} is not writable: {d}")
        return d
    # created later, once the solve has succeeded: its nearest existing
    # ancestor must be a writable directory
    existing = d
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CLIError(
            f"cannot create the directory of {what} ({d}): {existing} is not a directory"
        )
    if not os.access(existing, os.W_OK):
        raise CLIError(
            f"cannot create the directory of {what} ({d}): {existing} is not writable"
        )
    return d


def _make_figure(result, evoked, forward, fname, title=None):
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    from .viz import plot_tfmxne

    fig = plot_tfmxne(result, evoked, forward=forward, fname=fname, title=title)
    plt.close(fig)


def _figure_title(result, evoked, n_conditions, joint):
    """The title of a figure of several conditions (None: the default's)."""
    if n_conditions == 1 and not joint:
        return None
    n = result.estimate.data.shape[0]
    how = f"joint TF-MxNE of {n_conditions} conditions" if joint else "TF-MxNE"
    return (
        f"'{evoked.comment}' ({how}): {n} active source{'s' if n != 1 else ''}, "
        f"alpha={result.alpha:.4g} % of alpha_max, l1_ratio={result.l1_ratio:g}"
    )


def _print_warnings(caught, logged=()):
    seen = set()
    for msg in [_one_line(w.message) for w in caught] + [_one_line(m) for m in logged]:
        if any(s in msg for s in _IGNORED_WARNINGS) or msg in seen:
            continue
        seen.add(msg)
        print(f"{PROG}: warning: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------
def _cmd_sys_info(args):
    from ._sysinfo import sys_info

    sys_info(show_paths=args.show_paths)
    return 0


def _cmd_demo(args):
    from .datasets import sample

    params = _solver_params(args)
    fig_dir = _check_out_dir(args.out, "--out") if args.figure else None
    evoked, forward, noise_cov = sample.load()
    _crop(evoked, args.tmin, args.tmax)
    notes = []
    if params["alpha"] == sample.DEMO_PARAMS["alpha"]:
        notes = [
            f"alpha is fixed for this data set: from {sample.DEMO_ALPHA_RANGE[0]:g} "
            f"to {sample.DEMO_ALPHA_RANGE[1]:g} the estimate keeps one source in",
            "each auditory cortex (tfmxne.solve with alpha=None chooses alpha "
            "automatically, in a few solves)",
        ]
    return _run_and_report(
        args,
        [evoked],
        forward,
        noise_cov,
        params,
        titles=[
            f"tfmxne demo: TF-MxNE on MNE's sample data ('{evoked.comment}', "
            f"MEG + EEG, N={evoked.nave})"
        ],
        out_dir=fig_dir,
        figures=[Path(args.out).name] if args.figure else None,
        notes=notes,
    )


def _cmd_run(args):
    import mne

    params = _solver_params(args)
    if params["alpha"] is not None and params["l1_ratio"] is None:
        params["l1_ratio"] = DEFAULT_L1_RATIO
    baseline = _parse_baseline(args.baseline)
    ev_path = _check_file(args.evoked, "evoked")
    fwd_path = _check_file(args.forward, "forward")
    cov_path = _check_file(args.cov, "noise covariance")
    out_dir = _check_out_dir(args.out, "--out")
    base = Path(args.out).name
    if not base or base in (".", ".."):
        raise CLIError(f"--out must name files (a base name), got {args.out!r}")
    if args.joint and args.compare_mne:
        raise CLIError(
            "--compare-mne compares one solve with MNE's tf_mixed_norm; MNE has no "
            "joint solve (drop --joint or --compare-mne)"
        )
    weights = _read_weights(args.weights)
    evokeds = _read_evoked(ev_path, args.condition)
    forward = _read(
        "forward", fwd_path, lambda p: mne.read_forward_solution(p, verbose=False)
    )
    noise_cov = _read(
        "noise covariance", cov_path, lambda p: mne.read_cov(p, verbose=False)
    )
    for evoked in evokeds:
        if baseline is not None:
            try:
                evoked.apply_baseline(baseline, verbose=False)
            except ValueError as exc:
                raise CLIError(f"--baseline: {_one_line(exc)}") from exc
        _crop(evoked, args.tmin, args.tmax)
    needs_h5 = params["pick_ori"] == "vector" or forward["src"].kind == "mixed"
    if needs_h5:
        try:
            import h5io  # noqa: F401
        except ImportError:
            raise CLIError(
                "saving vector or mixed source estimates needs the h5io package "
                "(pip install h5io)"
            ) from None
    params["weights"] = weights
    several = len(evokeds) > 1
    bases = [
        f"{base}-{_slug(ev, k)}" if several else base for k, ev in enumerate(evokeds)
    ]
    if len(set(bases)) < len(bases):
        raise CLIError(
            "the conditions' names give the same output file names: "
            f"{', '.join(bases)} (choose them by index in another order, or rename)"
        )
    how = "TF-MxNE"
    if args.joint:
        names = ", ".join(f"'{ev.comment}'" for ev in evokeds)
        how = f"joint TF-MxNE of {len(evokeds)} conditions ({names})"
    return _run_and_report(
        args,
        evokeds,
        forward,
        noise_cov,
        params,
        titles=[
            f"tfmxne run: {how}: '{ev.comment}' (N={ev.nave}) of {ev_path.name}"
            for ev in evokeds
        ],
        out_dir=out_dir,
        figures=[b + ".png" for b in bases] if args.figure else None,
        bases=bases,
        joint=args.joint,
    )


def _run_and_report(
    args,
    evokeds,
    forward,
    noise_cov,
    params,
    titles,
    out_dir,
    figures,
    bases=None,
    notes=(),
    joint=False,
):
    """Solve the evokeds (each, or jointly), write every output set at once
    (all or nothing) and print one report per evoked."""
    quiet = args.quiet
    results, seconds = _solve(evokeds, forward, noise_cov, params, args, quiet, joint)
    reports = []
    for k, (evoked, result, sec) in enumerate(zip(evokeds, results, seconds)):
        shown = dict(params, alpha=result.alpha, l1_ratio=result.l1_ratio)
        lines = list(notes)
        if joint:
            lines += _wrap(
                f"joint solve of {len(evokeds)} conditions: the active positions are "
                "shared, each condition has its own time courses; alpha, alpha_max "
                "and the duality gap are the joint problem's",
                width=86,
            )
        lines += _choice_note(result, sec, params)
        auto = result.selection is not None
        report = format_report(
            result,
            evoked,
            forward,
            shown,
            titles[k],
            notes=lines,
            elapsed=sec if auto or joint else None,
        )
        if args.compare_mne:
            report += "\n" + "\n".join(
                _compare_mne(evoked, forward, noise_cov, shown, result)
            )
        reports.append(report)
    written = []
    if out_dir is not None and (figures is not None or bases is not None):
        try:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            with _staging(out_dir) as tmp:
                for k, (evoked, result) in enumerate(zip(evokeds, results)):
                    if bases is not None:
                        _write_estimates(result, tmp / bases[k], args)
                    if figures is not None:
                        title = _figure_title(result, evoked, len(evokeds), joint)
                        _make_figure(result, evoked, forward, tmp / figures[k], title)
                written = _commit(tmp, out_dir)
        except CLIError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            raise CLIError(f"cannot write the outputs: {_one_line(exc)}") from exc
    if not quiet:
        print("\n\n".join(reports))
        if written:
            print("\nwrote: " + ", ".join(str(w) for w in written))
    return EXIT_OK


def _write_estimates(result, base, args):
    import mne

    stc = result.estimate
    ftype = (
        "h5"
        if isinstance(
            stc,
            (
                mne.VectorSourceEstimate,
                mne.MixedSourceEstimate,
                mne.VolVectorSourceEstimate,
                mne.MixedVectorSourceEstimate,
            ),
        )
        else "stc"
    )
    stc.save(str(base), ftype=ftype, overwrite=True, verbose=False)
    result.residual.save(f"{base}-res-ave.fif", overwrite=True, verbose=False)
    if args.dipoles:
        dips = result.dipoles()
        for k, dip in enumerate(dips):
            dip.save(
                f"{base}-dip{k:02d}.{args.dipole_format}", overwrite=True, verbose=False
            )


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------
def main(argv=None):
    """Entry point of the ``tfmxne`` command.

    Parameters
    ----------
    argv : list of str | None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 2 for errors the user can fix (bad arguments, missing or
        mismatched files, bad parameter values), 1 for unexpected errors,
        130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    verbose = getattr(args, "verbose", False)
    caught = []
    collector = _WarningCollector()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with _mne_logging(verbose, collector=collector):
                status = args.func(args)
    except CLIError as exc:
        _print_warnings(caught, collector.messages)
        if verbose:
            traceback.print_exc()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        _print_warnings(caught, collector.messages)
        if verbose:
            traceback.print_exc()
        print(
            f"{PROG}: error: unexpected {type(exc).__name__}: {_one_line(exc)} "
            "(run with --verbose for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    _print_warnings(caught, collector.messages)
    return status


if __name__ == "__main__":
    sys.exit(main())
