# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The public API: ``tfmxne.__all__`` lists it, and its logging follows MNE's
``verbose`` convention (every public function that logs takes ``verbose``, and
``verbose=False`` prints nothing)."""

import inspect
import logging
import types

import mne
import numpy as np
import pytest

import tfmxne
from tfmxne import viz
from tfmxne.datasets import sample

# functions whose signatures are MNE's own (mne.time_frequency, mne.inverse_sparse):
# kept as MNE has them, without ``verbose``; they must not log at all
MNE_SIGNATURES = {"istft", "norm_epsilon_inf", "dgap_l21l1", "stft_norm1", "stft_norm2"}
# functions that print by purpose (their output is what they are for)
PRINTS = {"sys_info"}


def test_all_is_the_public_namespace():
    names = set(tfmxne.__all__)
    assert len(names) == len(tfmxne.__all__)  # no repeats
    missing = [n for n in names if not hasattr(tfmxne, n)]
    assert not missing
    public = {
        n
        for n, obj in vars(tfmxne).items()
        if not n.startswith("_") and not isinstance(obj, types.ModuleType)
    }
    assert public - names == set(), "public names not in __all__"
    for name in names - {"__version__"}:
        doc = inspect.getdoc(getattr(tfmxne, name)) or ""
        assert len(doc.splitlines()) > 2, f"{name} has no docstring"


def _public_functions():
    funcs = {n: getattr(tfmxne, n) for n in tfmxne.__all__}
    funcs = {n: f for n, f in funcs.items() if inspect.isfunction(f)}
    for mod in (viz, sample):
        for n, f in vars(mod).items():
            if (
                inspect.isfunction(f)
                and not n.startswith("_")
                and f.__module__ == mod.__name__
            ):
                funcs[f"{mod.__name__.removeprefix('tfmxne.')}.{n}"] = f
    return funcs


@pytest.fixture(scope="module")
def tiny():
    """The bundled sample problem, cropped to a tenth of a second."""
    evoked, forward, noise_cov = sample.load()
    evoked.crop(0.05, 0.15)
    return evoked, forward, noise_cov


def _calls(tiny):
    """One cheap call of each public function, as ``name: f(**kw)``."""
    evoked, forward, noise_cov = tiny
    kw = dict(alpha=80.0, l1_ratio=0.03)
    rng = np.random.default_rng(0)
    G = rng.standard_normal((12, 20))
    M = G[:, :2] @ rng.standard_normal((2, 32))
    Z = tfmxne.stft(M[:2], 16, 4, verbose=False)
    res = tfmxne.solve(evoked, forward, noise_cov, verbose=False, **kw)
    auto = tfmxne.solve(evoked, forward, noise_cov, l1_ratio=0.03, verbose=False)
    epochs = mne.EpochsArray(
        np.stack([evoked.data, evoked.data]),
        evoked.info,
        tmin=evoked.times[0],
        baseline=None,
        verbose=False,
    )
    calls = {
        "tf_mixed_norm": lambda v: tfmxne.tf_mixed_norm(*tiny, verbose=v, **kw),
        "solve": lambda v: tfmxne.solve(*tiny, verbose=v, **kw),
        "solve_joint": lambda v: tfmxne.solve_joint(
            [evoked, evoked], forward, noise_cov, verbose=v, **kw
        ),
        "tf_mixed_norm_path": lambda v: tfmxne.tf_mixed_norm_path(
            *tiny, alphas=[85.0, 80.0], l1_ratio=0.03, verbose=v
        ),
        "solve_epochs": lambda v: tfmxne.solve_epochs(
            epochs, forward, noise_cov, verbose=v, **kw
        ),
        "tf_mixed_norm_solver": lambda v: tfmxne.tf_mixed_norm_solver(
            M, G, 1.0, 0.1, 16, 4, verbose=v
        ),
        "iterative_tf_mixed_norm_solver": lambda v: tfmxne.iterative_tf_mixed_norm_solver(
            M, G, 1.0, 0.1, 2, 16, 4, verbose=v
        ),
        "stft": lambda v: tfmxne.stft(M, 16, 4, verbose=v),
        "compare_with_mne": lambda v: tfmxne.compare_with_mne(
            *tiny, res, verbose=v, **kw
        ),
        "patch_mne": lambda v: (tfmxne.patch_mne(verbose=v), tfmxne.unpatch_mne()),
        "unpatch_mne": lambda: tfmxne.unpatch_mne(),
        "mne_is_patched": lambda: tfmxne.mne_is_patched(),
        "clear_cache": lambda: tfmxne.clear_cache(),
        "istft": lambda: tfmxne.istft(Z, 4),
        "stft_norm1": lambda: tfmxne.stft_norm1(Z),
        "stft_norm2": lambda: tfmxne.stft_norm2(Z),
        "norm_epsilon_inf": lambda: tfmxne.norm_epsilon_inf(G, M, 0.1, 1, 16, 4),
        "dgap_l21l1": lambda: tfmxne.dgap_l21l1(
            M,
            G,
            np.zeros((0, 2 * Z.shape[1] * Z.shape[2])),
            np.zeros(20, bool),
            1.0,
            0.1,
            16,
            4,
            1,
        ),  # fmt: skip
        "viz.source_table": lambda: viz.source_table(res.estimate, forward),
        "viz.goodness_of_fit": lambda: viz.goodness_of_fit(res),
        "viz.plot_brain": lambda: _close(viz.plot_brain(res.estimate, forward)),
        "viz.plot_tfmxne": lambda: _close(viz.plot_tfmxne(res, evoked)),
        "viz.plot_selection": lambda: _close(viz.plot_selection(auto)),
        "datasets.sample.load": lambda v: sample.load(verbose=v),
        "datasets.sample.data_path": lambda: sample.data_path(),
        "datasets.sample.fnames": lambda: sample.fnames(),
    }
    return calls


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_every_public_function_is_called_here(tiny):
    assert set(_public_functions()) - PRINTS == set(_calls(tiny))


def _output(capsys, caplog, call):
    capsys.readouterr()
    caplog.clear()
    call()
    out = capsys.readouterr()
    records = [
        r for r in caplog.records if r.name == "mne" and r.levelno < logging.WARNING
    ]
    return out.out + out.err, records


def test_verbose_convention(tiny, capsys, caplog):
    """A function with ``verbose`` prints nothing with ``verbose=False`` (and
    logs with ``verbose=True``: so the parameter is not idle); one without it
    logs nothing, even at MNE's INFO level, unless its signature is MNE's."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    caplog.set_level(logging.DEBUG, logger="mne")
    funcs = _public_functions()
    loud = []
    for name, call in _calls(tiny).items():
        takes_verbose = "verbose" in inspect.signature(funcs[name]).parameters
        if takes_verbose:
            with mne.use_log_level("info"):
                text, records = _output(capsys, caplog, lambda: call(False))
            assert text == "" and not records, f"{name}(verbose=False) printed {text!r}"
            with mne.use_log_level("warning"):
                text, records = _output(capsys, caplog, lambda: call(True))
            if records:
                loud.append(name)
        else:
            with mne.use_log_level("info"):
                text, records = _output(capsys, caplog, call)
            assert name not in MNE_SIGNATURES or not records
            assert not records and text == "", (
                f"{name} logs ({[r.getMessage() for r in records][:3]}) but takes no "
                "verbose"
            )
    # the solves log their progress as MNE's do
    assert {"tf_mixed_norm", "solve", "tf_mixed_norm_solver", "stft", "patch_mne"} <= set(
        loud
    )


def test_api_page_lists_all():
    """The documentation's API page has an entry for every public name (the
    docs build also checks it)."""
    from pathlib import Path

    api = Path(__file__).resolve().parent.parent / "docs" / "api.rst"
    if not api.exists():
        pytest.skip("not running from a source checkout")
    listed = {
        line.strip() for line in api.read_text().splitlines() if line.startswith("   ")
    }
    missing = set(tfmxne.__all__) - {"__version__"} - listed
    assert not missing, f"not in docs/api.rst: {sorted(missing)}"
    for name in _public_functions():
        if "." in name:  # viz.*, datasets.sample.*
            assert name.rsplit(".", 1)[1] in listed, name
