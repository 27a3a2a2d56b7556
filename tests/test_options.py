# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The options of tf_mixed_norm are defined once (tfmxne._options); the public
signatures, the path functions and the command line follow that table."""

import inspect

import mne
import numpy as np
import pytest

import tfmxne
from tfmxne import _options, cli

TABLE = _options.REGULARISATION + _options.OPTIONS
#: Parameters of tf_mixed_norm that are not options of a solve.
NOT_OPTIONS = {"evoked", "forward", "noise_cov", "return_residual"}
NOT_OPTIONS |= {"return_as_dipoles", "verbose"}


@pytest.mark.parametrize("func", [tfmxne.tf_mixed_norm, tfmxne.solve, tfmxne.solve_joint])
def test_public_signatures_follow_the_table(func):
    params = inspect.signature(func).parameters
    for opt in TABLE:
        assert opt.name in params, opt.name
        assert params[opt.name].default == opt.default, opt.name
    # and the table holds every option of MNE's function
    mne_params = inspect.signature(mne.inverse_sparse.tf_mixed_norm).parameters
    assert set(mne_params) - NOT_OPTIONS == {o.name for o in TABLE}


def test_table_order_is_mnes():
    mne_params = list(inspect.signature(mne.inverse_sparse.tf_mixed_norm).parameters)
    names = [p for p in mne_params if p in _options.NAMES]
    assert tuple(names) == _options.NAMES


def test_checked_defaults():
    opts = _options.check_options({})
    assert (opts.wsize, opts.tstep) == ((64,), (4,))
    assert opts.dgap_freq == 10 and opts.window == 0.02 and opts.maxit == 3000
    assert _options.check_options({"dgap_freq": np.inf}).dgap_freq == 0
    stages = {s: set(_options.of_stage(opts, s)) for s in _options.STAGES}
    assert set().union(*stages.values()) == set(_options.NAMES)
    assert stages["forward"] == {
        "loose",
        "depth",
        "weights",
        "weights_min",
        "pca",
        "rank",
    }


def test_with_defaults():
    assert _options.with_defaults({}) == _options.DEFAULTS
    assert _options.with_defaults({"tol": 1e-6})["tol"] == 1e-6
    with pytest.raises(TypeError, match=r"unexpected option\(s\) \['foo'\]"):
        _options.with_defaults({"foo": 1})


@pytest.mark.parametrize("command", ["run", "demo"])
def test_command_line_defaults_follow_the_table(command, tmp_path):
    parser = cli.build_parser()
    argv = [command]
    if command == "run":
        argv += ["--evoked", "e", "--forward", "f", "--cov", "c", "--out", "o"]
    params = cli._solver_params(parser.parse_args(argv))
    expected = dict(_options.DEFAULTS)
    del expected["weights"]  # a file, read by the command
    if command == "run":  # the library's default: both chosen automatically
        assert cli.DEFAULT_ALPHA is None
        expected.update(alpha=None, l1_ratio=None)
    else:
        from tfmxne.datasets.sample import DEMO_PARAMS

        expected.update(alpha=DEMO_PARAMS["alpha"], l1_ratio=DEMO_PARAMS["l1_ratio"])
    assert params == expected
    # several words: one value
    args = parser.parse_args(argv + ["--wsize", "16", "64", "--tstep", "4", "4"])
    params = cli._solver_params(args)
    assert (params["wsize"], params["tstep"]) == ([16, 64], [4, 4])
    args = parser.parse_args(argv + ["--window", "none", "--dgap-freq", "inf"])
    params = cli._solver_params(args)
    assert params["window"] is None and params["dgap_freq"] == np.inf
