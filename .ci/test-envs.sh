#!/usr/bin/env bash
# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
#
# The test command of README.md (and of CI): builds tfmxne's wheel once, then
# for each environment creates a fresh venv, installs the wheel with its test
# extra and runs the suite:
#
#   newest   the newest releases of everything
#   oldest   the lowest versions pyproject.toml declares (.ci/oldest-constraints.txt:
#            MNE 1.10, NumPy 1.25, SciPy 1.11)
#
# and ruff (lint and format) and cython-lint on the sources, once. TFMXNE_ENVS="newest" (or
# "oldest") runs one environment; extra arguments go to pytest. Each step
# prints the seconds it took.
set -euo pipefail
cd "$(dirname "$0")/.."
envs=${TFMXNE_ENVS:-"newest oldest"}
py=${PYTHON:-python3}
t0=$SECONDS
step() { echo "== $1 ($((SECONDS - t0)) s)"; }

step "build the wheel"
rm -rf .ci-dist
$py -m venv .venv-build
.venv-build/bin/pip install -q build
.venv-build/bin/python -m build -q --wheel --outdir .ci-dist . > .ci-dist.log 2>&1 \
  || { cat .ci-dist.log; exit 1; }
wheel=$(ls .ci-dist/tfmxne-*.whl)

step "lint"
.venv-build/bin/pip install -q ruff cython-lint
.venv-build/bin/ruff check src tests benchmarks docs .ci
.venv-build/bin/ruff format --check src tests benchmarks docs .ci
PATH="$PWD/.venv-build/bin:$PATH" .venv-build/bin/cython-lint src/tfmxne docs/c_api

for env in $envs; do
  case $env in
    newest) constraints=() ;;
    oldest)
      constraints=(-c .ci/oldest-constraints.txt) ;;
    *) echo "unknown environment '$env' (newest, oldest)"; exit 2 ;;
  esac
  step "$env: install"
  rm -rf ".venv-$env"
  $py -m venv ".venv-$env"
  ".venv-$env/bin/pip" install -q "${constraints[@]}" "$wheel[test]"
  ".venv-$env/bin/python" -c "import mne, numpy, scipy, tfmxne; print('tfmxne', tfmxne.__version__, '| mne', mne.__version__, '| numpy', numpy.__version__, '| scipy', scipy.__version__)"
  step "$env: tests"
  # (src layout: the sources are not importable from the root, the wheel is tested)
  ".venv-$env/bin/python" -m pytest -q "$@" tests
done
step "done"
