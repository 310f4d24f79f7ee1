# Two commands a newcomer needs (see README.md):
#   make book   installs everything, then builds the website from the outputs saved in the notebooks
#   make test   installs everything, then runs the unit tests, every notebook (nbval) and the browser test
# Both are idempotent: a second run reuses .venv and the vendored JavaScript.
# For maintainers (tools/execute_notebooks.py saves the outputs, each chapter stamped with its profile):
#   make notebooks      re-executes the stale chapters in this machine's profile (never over full-profile outputs)
#   make gpu-notebooks  on a GPU machine without the venv: the full profile within BUDGET seconds, JOBS at a time

PYTHON ?= python3
BUDGET ?= 540
JOBS   ?= 1
VENV   := .venv
PY     := $(VENV)/bin/python
VENDOR := book/_vendor
AXE    := build/axe/node_modules/axe-core/axe.min.js

.PHONY: setup system book test notebooks gpu-notebooks benchmark clean

setup: system $(VENV)/.installed $(VENDOR)/.installed $(AXE)

# Debian packages: the dataset and, for the browser test, Chromium. Skipped where there is no
# apt-get or no root: the data is then downloaded by torchvision, and the browser test says what is missing.
system:
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  if [ ! -d /usr/share/datasets/fashion-mnist ] || ! command -v chromium >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist chromium >/dev/null; \
	  fi; \
	else echo "not root or no apt-get: skipping Debian packages (dataset-fashion-mnist, chromium)"; fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[book,test,d2l,grade]"
	$(PY) -m pip install -q --no-deps d2l==1.0.3
	touch $@

# MathJax, require.js and the ipywidgets HTML manager, served by the site itself so that math and
# widgets show without internet.
$(VENDOR)/.installed:
	rm -rf $(VENDOR) build/npm && mkdir -p $(VENDOR) build/npm
	cd build/npm && npm install --no-audit --no-fund --silent \
	  @jupyter-widgets/html-manager@1.0.6 requirejs@2.3.8 mathjax@3.2.2
	cp -r build/npm/node_modules/@jupyter-widgets/html-manager/dist $(VENDOR)/html-manager
	rm -f $(VENDOR)/html-manager/*.map
	cp build/npm/node_modules/requirejs/require.js $(VENDOR)/require.js
	cp -r build/npm/node_modules/mathjax/es5 $(VENDOR)/mathjax
	touch $@

# axe-core, the accessibility rules the browser test runs on every page (WCAG 2 A and AA); not
# part of the website.
$(AXE):
	mkdir -p build/axe
	cd build/axe && npm install --no-audit --no-fund --silent axe-core@4.14.1

book: setup
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going book
	@echo "The book is in book/_build/html/index.html"

test: setup
	$(PY) -m pytest -n auto --nbval-lax --nbval-current-env

# Re-execute the chapters whose code changed, in place, saving the outputs the website shows (profile:
# cpu here, full on a GPU). Chapters with full-profile outputs are kept; add ARGS=--force to replace them.
notebooks: setup
	$(PY) tools/execute_notebooks.py $(ARGS)

# On a GPU machine with torch, nbclient and ipykernel but no venv, apt or internet: the full profile,
# stopping within BUDGET seconds; run it again to continue where it stopped. Chapters that fail are
# saved in build/failed/.
gpu-notebooks:
	PYTHONPATH=. $(PYTHON) tools/execute_notebooks.py --profile full --budget $(BUDGET) --jobs $(JOBS) $(ARGS)

benchmark: setup
	$(PY) benchmarks/throughput.py

clean:
	rm -rf book/_build build
