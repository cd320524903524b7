# The README's two commands: `make lab` (set up, then start the app) and `make test`.
# Every target sets up what it needs: a .venv made with pip, idempotently.
PYTHON ?= python3
comma  := ,
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS ?= app,notebook,test,ray
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)-$(subst $(comma),_,$(EXTRAS))
PORT   ?= 8866

.PHONY: setup lab app jupyter test test-fast bench bench-class gpu-check ladder isoflop memorised markov-floor lr-transfer cooldowns lessons-full i18n system-packages clean

setup: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-* && touch $@

# Debian packages, best effort: Chromium for the browser tests, jemalloc for faster training on
# CPU (lab/runtime.py), a Chinese font so that Chromium draws the app at ?lang=zh (screenshots in
# tests/artifacts). Installed as root or with password-less sudo; otherwise a note, and the
# browser tests skip and training uses the default allocator.
APT_PACKAGES ?= chromium libjemalloc2 fonts-wqy-microhei
system-packages:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing=" chromium"; \
	  [ -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ] || [ -e /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 ] || missing="$$missing libjemalloc2"; \
	  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	  if [ -n "$$missing" ] && command -v apt-get >/dev/null 2>&1; then \
	    if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo"; else SUDO=none; fi; \
	    if [ "$$SUDO" = none ]; then echo "note: cannot install$$missing without root (sudo apt-get install$$missing)"; \
	    else $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	      || echo "note: apt-get could not install$$missing"; fi; \
	  elif [ -n "$$missing" ]; then echo "note: not a Debian system; install$$missing yourself for the browser tests and speed"; fi

# The app: Voila on the lab notebook, on the built-in corpus. LANG_APP=zh: the pages in Chinese.
lab: setup system-packages
	$(BIN)/python -m lab app --port $(PORT) $(if $(LANG_APP),--lang $(LANG_APP))

# Every lesson in full mode, one after the other against one new run store (lesson 3 reads the
# IsoFLOP study `make isoflop` prepared), timed: bench/lessons_full.py. About an hour and a half.
lessons-full: setup
	$(BIN)/python -m bench.lessons_full $(LESSONS_ARGS)

# The translation catalogs (lab/locale): the strings marked in lab/ and widgets/ and the lessons'
# paragraphs merged into every catalog, then what is still untranslated (lab/catalogs.py).
i18n: setup
	$(BIN)/python -m lab.catalogs update
	-$(BIN)/python -m lab.catalogs check

app: lab

jupyter: setup
	$(BIN)/jupyter lab notebooks/

# Three workers on a 2-core machine, a test file each at a time (pytest-xdist): the suite is
# compile-bound but its serving tests wait (heartbeats, page loads), and a third worker fills those
# waits (README, Tests: 13.6-14.8 min against 17.6 with two). A file's tests share its servers, kernels
# and notebook pool. `pytest` alone runs it in one process.
test: setup system-packages
	$(BIN)/python -m pytest -n 3 --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not browser and not ray"

# PyTorch is the benchmark's reference only. A CPU wheel on this disk (/opt/wheels) is preferred to
# the multi-GB CUDA build that a plain `pip install torch` would fetch.
bench: setup system-packages
	@$(BIN)/python -c 'import torch' 2>/dev/null || { \
	  w=$$(ls /opt/wheels/torch-*+cpu-cp$$($(BIN)/python -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')-*.whl 2>/dev/null | head -1); \
	  if [ -n "$$w" ]; then $(BIN)/python -m pip install --quiet "$$w"; else $(BIN)/python -m pip install --quiet -e '.[bench]'; fi; }
	$(BIN)/python -m bench $(BENCH_ARGS)

# A class of thirty (bench/bench_class.py): one app server, 30 headless Chromium pages opened at
# once; each page's time to ready, every kernel's RSS/PSS, the server's memory; JSON in bench/results/.
# Minutes on a 2-core machine. E.g. BENCH_CLASS_ARGS="--pages 5 --train 5 --json /tmp/class.json".
bench-class: setup system-packages
	$(BIN)/python -m bench.bench_class $(BENCH_CLASS_ARGS)

# The accelerator check (bench/gpu_check.py): matmul peaks, MFU per width in bf16 and fp32, vmap
# of 8 seeds, the compilation cache, stalls between chunks, device memory, two kernels on one
# device; JSON in bench/gpu_check.json. Under 5 minutes on a GPU; tiny models on CPU.
# E.g. GPU_CHECK_ARGS="--budget-s 120 --only train,vmap --out /tmp/check.json".
gpu-check: setup
	$(BIN)/python -m bench --gpu-check $(GPU_CHECK_ARGS)

# The default scaling ladder (README, "Scaling laws that predict"): eight sizes at 20 tokens per
# parameter into a store of its own, then the law fitted on the six smaller sizes and checked
# on the two larger ones. About 14 minutes of training on a 2-core laptop; rerunning reuses it.
LADDER_STORE ?= .ladder-store
ladder: setup
	$(BIN)/python -m lab sweep --tokens-per-param 20 --eval-tokens 65536 --store $(LADDER_STORE) $(LADDER_ARGS)
	$(BIN)/python -m lab fit --store $(LADDER_STORE) --holdout 2

# The compute-optimal split of this setup, measured (bench/isoflop.py): 5 budgets from 3e11 to 3e12
# FLOPs x 7 sizes x 2 seeds on the ladder's family, approach 2 (parabolas) beside approach 3
# (variable projection); JSON and a valley plot in bench/results/. About an hour on a 2-core
# laptop; rerunning only fits. E.g. ISOFLOP_ARGS="--seeds 0 --dry-run".
ISOFLOP_STORE ?= .isoflop-store
isoflop: setup
	@$(BIN)/python -c 'import kaleido' 2>/dev/null || $(BIN)/python -m pip install --quiet 'kaleido>=1.0' || echo "note: no kaleido, so no PNG (the HTML has the plot)"
	$(BIN)/python -m bench.isoflop --store $(ISOFLOP_STORE) $(ISOFLOP_ARGS)
	$(BIN)/python -m lab fit --store $(ISOFLOP_STORE) --law isoflop

# What the ladder's models could have memorised: each validation loss split by whether its 64 bytes
# occur in the training text, and the law fitted to each part (needs `make ladder` first; minutes).
memorised: setup
	$(BIN)/python -m bench.memorised --store $(LADDER_STORE) $(MEMORISED_ARGS)

# A floor that is known: the default ladder on a synthetic Markov source, E against its entropy rate.
markov-floor: setup
	$(BIN)/python -m bench.markov_floor $(MARKOV_ARGS)

# Does a learning rate tuned at width 32 hold at width 256? μP against the standard parameterisation.
lr-transfer: setup
	$(BIN)/python -m bench.lr_transfer $(LR_TRANSFER_ARGS)

# Shorter runs as WSD cooldowns of one long run per width, beside the same lengths trained from
# the start (bench/cooldowns.py; README, "WSD cooldowns"). About 10 minutes.
cooldowns: setup
	$(BIN)/python -m bench.cooldowns $(COOLDOWNS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
