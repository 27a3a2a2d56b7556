# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The options of ``tf_mixed_norm``, defined once.

Each option has one entry in :data:`OPTIONS` (its name, MNE's default, the check
that validates it and returns it in the form the solver uses, the stage of the
computation that reads it, and what the command line needs). Everything else
reads this table: the checks of every public function (:func:`check_options`),
the keyword options of the path functions (:func:`with_defaults`), the gathering
of the explicit arguments of :func:`tfmxne.solve` and :func:`tfmxne.tf_mixed_norm`
(:func:`gather`), the preparation (the options of the ``'forward'`` stage), the
solves, and the options of ``tfmxne run``. The public functions keep MNE's
explicit signatures (readable documentation, MNE's drop-in); a test checks that
their parameters and defaults are the table's.

The checks here need no data. The checks against the data (a ``pick_ori`` the
source space supports, a ``window`` shorter than the data, ``weights`` with one
value per source position) come with the data, in ``check_inputs``.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from ._validation import (
    check_alpha,
    check_bool,
    check_depth,
    check_dgap_freq,
    check_float,
    check_int,
    check_l1_ratio,
    check_loose,
    check_pick_ori,
    check_rank,
    check_window,
    check_wsize_tstep,
)

#: What each stage of a computation reads: the preparation of the forward
#: operator (keyed by the forward, the covariance and the channels), the
#: preparation of the data, the solves.
STAGES = ("forward", "data", "solve")


# --------------------------------------------------------------------------
# text parsers of the command line (str -> value; ValueError with a message)
# --------------------------------------------------------------------------
def parse_number(text):
    """A real number."""
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


def parse_integer(text):
    """An integer."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _keyword_or(keywords, parse):
    """Parse ``keywords`` (case-insensitive, to their values) or else ``parse``."""

    def convert(text):
        low = text.strip().lower()
        return keywords[low] if low in keywords else parse(text)

    return convert


def _rank_pairs(text):
    out = {}
    for part in text.split(","):
        key, sep, val = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip().lower()] = int(val)
        except ValueError:
            raise ValueError(
                f"expected 'none', 'full', 'info' or CH_TYPE=RANK pairs such as "
                f"'meg=302,eeg=59', got {text!r}"
            ) from None
    return out


def _one_or_list(values):
    return values[0] if len(values) == 1 else list(values)


def _window_value(values):
    if len(values) == 1:
        return values[0]
    return tuple(values)


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Cli:
    """How ``tfmxne run`` and ``tfmxne demo`` take an option (``--name-with-dashes``).

    ``parse`` turns one word of the command line into a value (``None``: the
    text itself); with ``many``, the option takes one or more words and
    ``join`` makes the value of the words. ``flag``: a boolean with a
    ``--no-`` form. The help text ends with the default, ``shown`` or the
    table's.
    """

    help: str
    parse: Callable | None = None
    metavar: str | None = None
    many: bool = False
    join: Callable | None = None
    choices: tuple | None = None
    flag: bool = False
    shown: str | None = None


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of ``tf_mixed_norm``: name, MNE's default, check, stage, CLI."""

    name: str
    default: object
    check: Callable | None  # value -> value as the solver uses it (None: later)
    stage: str  # one of STAGES, or 'regularisation'
    cli: Cli


def _check(name, low=None, **kw):
    def check(value):
        return check_float(value, name, low=low, **kw)

    return check


def _check_int(name, low):
    def check(value):
        return check_int(value, name, low)

    return check


def _check_bool(name):
    def check(value):
        return check_bool(value, name)

    return check


def _check_window(window):
    check_window(window)
    return window  # (as given: the messages show what the caller wrote)


_NUMBER_OR_NONE = _keyword_or({"none": None}, parse_number)

#: The regularisation (percent of alpha_max, share of the temporal penalty);
#: MNE's defaults. ``None`` (MNE crashes there) chooses it automatically.
REGULARISATION = (
    Option(
        "alpha",
        None,
        check_alpha,
        "regularisation",
        Cli(
            "regularisation in percent of alpha_max, in (0, 100): larger gives fewer "
            "active sources",
            parse_number,
            metavar="A",
        ),
    ),
    Option(
        "l1_ratio",
        None,
        check_l1_ratio,
        "regularisation",
        Cli(
            "share of the temporal (L1) penalty in [0, 1]: larger gives sparser "
            "time-frequency content",
            parse_number,
            metavar="R",
        ),
    ),
)

#: The other options of ``tf_mixed_norm``, in the order of MNE's signature.
OPTIONS = (
    Option(
        "loose",
        "auto",
        check_loose,
        "forward",
        Cli(
            "weight of the tangential source orientations, 'auto' or in [0, 1] "
            "(0: fixed orientation, 1: free)",
            _keyword_or({"auto": "auto"}, parse_number),
            shown="auto, i.e. 0.2 on surface source spaces",
        ),
    ),
    Option(
        "depth",
        0.8,
        check_depth,
        "forward",
        Cli("depth weighting exponent, or 'none'", _NUMBER_OR_NONE),
    ),
    Option(
        "maxit",
        3000,
        _check_int("maxit", 1),
        "solve",
        Cli("maximum number of block coordinate descent epochs", parse_integer),
    ),
    Option(
        "tol",
        1e-4,
        _check("tol", low=0.0, low_open=True),
        "solve",
        Cli(
            "tolerance on the duality gap, relative to the squared norm of the "
            "whitened data",
            parse_number,
        ),
    ),
    Option(
        "weights",
        None,
        None,  # against the forward's source positions, by check_inputs
        "forward",
        Cli(
            "source weights (for example a dSPM estimate): a source estimate file "
            "(.stc, -lh.stc, .h5) or a .npy array with one value per source position",
            metavar="FILE",
        ),
    ),
    Option(
        "weights_min",
        0.0,
        _check("weights_min", low=0.0),
        "forward",
        Cli(
            "drop the source positions whose weight (scaled by the maximum) is at "
            "or below this",
            parse_number,
            metavar="W",
        ),
    ),
    Option(
        "pca",
        True,
        _check_bool("pca"),
        "forward",
        Cli("whiten with PCA, dropping the zero-variance directions", flag=True),
    ),
    Option(
        "debias",
        True,
        _check_bool("debias"),
        "solve",
        Cli("remove the amplitude bias of the estimate", flag=True),
    ),
    Option(
        "wsize",
        64,
        None,  # with tstep, by check_options
        "data",
        Cli(
            "STFT window length(s) in samples, multiples of 4; several values build "
            "a multi-scale dictionary",
            parse_integer,
            metavar="N",
            many=True,
            join=_one_or_list,
        ),
    ),
    Option(
        "tstep",
        4,
        None,  # with wsize, by check_options
        "data",
        Cli(
            "STFT hop(s) in samples, one per --wsize, even and dividing wsize",
            parse_integer,
            metavar="N",
            many=True,
            join=_one_or_list,
        ),
    ),
    Option(
        "window",
        0.02,
        _check_window,
        "data",
        Cli(
            "length of the half-Hanning tapers applied at both ends of the data: "
            "one value for both ends, two for left and right, or 'none'",
            _NUMBER_OR_NONE,
            metavar="SECONDS",
            many=True,
            join=_window_value,
        ),
    ),
    Option(
        "dgap_freq",
        10,
        check_dgap_freq,
        "solve",
        Cli(
            "evaluate the duality gap every N epochs, or 'inf'",
            _keyword_or({"inf": np.inf, "np.inf": np.inf}, parse_integer),
            metavar="N",
        ),
    ),
    Option(
        "rank",
        None,
        check_rank,
        "forward",
        Cli(
            "rank of the noise covariance: 'none' (estimated), 'full', 'info' or "
            "pairs such as 'meg=302,eeg=59'",
            _keyword_or(
                {"none": None, "auto": None, "full": "full", "info": "info"}, _rank_pairs
            ),
        ),
    ),
    Option(
        "pick_ori",
        None,
        check_pick_ori,
        "solve",
        Cli(
            "'vector': keep the three orientation components; 'normal': the signed "
            "component normal to the cortex",
            choices=("vector", "normal"),
            shown="the amplitude",
        ),
    ),
    Option(
        "n_tfmxne_iter",
        1,
        _check_int("n_tfmxne_iter", 1),
        "solve",
        Cli(
            "number of iterations of the reweighted (irTF-MxNE) solver; 1 is plain "
            "TF-MxNE",
            parse_integer,
            metavar="N",
        ),
    ),
)

#: Names of :data:`OPTIONS`, in order.
NAMES = tuple(o.name for o in OPTIONS)
#: MNE's defaults of :data:`OPTIONS`.
DEFAULTS = {o.name: o.default for o in OPTIONS}
#: Every option by name (the regularisation included).
BY_NAME = {o.name: o for o in REGULARISATION + OPTIONS}

Options = dataclasses.make_dataclass(
    "Options",
    [(o.name, object, dataclasses.field(default=o.default)) for o in OPTIONS],
    frozen=True,
    eq=False,
    namespace={
        "__module__": __name__,
        "__doc__": "The checked options of one call (one field per entry of OPTIONS, "
        "in the form the solver uses: ``wsize`` and ``tstep`` tuples of ints, "
        "``dgap_freq`` 0 for never, numbers as int or float).",
    },
)


def gather(values):
    """The entries of ``values`` (e.g. a public function's ``locals()``) that are
    options of the table, by name."""
    return {name: values[name] for name in NAMES}


def with_defaults(options):
    """``options`` (keyword arguments) completed with MNE's defaults; an unknown
    name raises a ``TypeError``."""
    bad = set(options) - set(NAMES)
    if bad:
        raise TypeError(
            f"unexpected option(s) {sorted(bad)}; valid options: {sorted(NAMES)}"
        )
    return dict(DEFAULTS, **options)


def check_options(values):
    """Check the options in ``values`` (defaults for those absent): an :data:`Options`.

    Each check raises a ``ValueError`` or ``TypeError`` naming the option and the
    value received; ``wsize`` and ``tstep`` are checked together.
    """
    out = {}
    for opt in OPTIONS:
        value = values.get(opt.name, opt.default)
        out[opt.name] = value if opt.check is None else opt.check(value)
    out["wsize"], out["tstep"] = check_wsize_tstep(out["wsize"], out["tstep"])
    return Options(**out)


def of_stage(opts, stage):
    """The options of ``opts`` that the ``stage`` reads (one of :data:`STAGES`)."""
    return {o.name: getattr(opts, o.name) for o in OPTIONS if o.stage == stage}
