#!/usr/bin/env bash
# Prepare .carry/: what the lent GPU machine needs to execute the book and lacks, since it cannot
# reach any package registry. Its image has Python 3.12 with torch, torchvision, numpy, pandas,
# matplotlib, scikit-learn, scikit-image, tqdm (see the device tool's KINDS.md), but not Jupyter's
# kernel and executor, ipywidgets or d2l; and not Fashion-MNIST.
#
#   tools/gpu_carry.sh            # here, once (needs pip and Debian's dataset-fashion-mnist)
#   # there, first thing in the command:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .carry/wheels/*.whl
#   export PYTHONPATH=/tmp/site:$PWD ALEXNET_EDU_DATA=$PWD/.carry/data
#
# .carry/ is git-ignored; name it in the device tool's `carry` (about 45 MB of its 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .carry && mkdir -p .carry/wheels .carry/data
# Pure-Python or cp312 manylinux wheels, no dependencies resolved: the list is what nbclient,
# ipykernel, ipywidgets and d2l import beyond the image's packages, and myst-nb (whose glue
# stores the numbers the prose quotes; it needs docutils, not Sphinx). (debugpy, 4 MB, is left out:
# ipykernel runs without it, with no debugger.)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .carry/wheels \
  nbclient nbformat jupyter_client jupyter_core "ipykernel<7" ipython ipython_pygments_lexers traitlets \
  pyzmq tornado comm matplotlib-inline nest_asyncio platformdirs fastjsonschema jsonschema \
  jsonschema-specifications referencing rpds-py prompt_toolkit wcwidth jedi parso decorator pexpect \
  ptyprocess stack_data executing asttokens pure_eval ipywidgets widgetsnbextension \
  jupyterlab_widgets d2l==1.0.3 myst-nb docutils pygments attrs
# ipykernel 6, which gpu_session.sh tries in place of 7.4 (Looking inside stalled under 7.4 there)
mkdir -p .carry/k6
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 -d .carry/k6 ipykernel==6.29.5
cp /usr/share/datasets/fashion-mnist/*.gz .carry/data/
du -sh .carry/wheels .carry/data
