# One command per job; each installs what it needs first (torch's CPU wheel before anything
# that depends on torch, so pip never pulls the CUDA build).
PY ?= python3
PIP = $(PY) -m pip install --quiet

.PHONY: install install-dev demo test lint bench eval train train-chain train-v1 weights weights-v1

install:
	$(PIP) torch==2.13.0
	$(PIP) -e .

install-dev:
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"

demo: install
	lam encode examples/texts -o demo-embeddings.npy
	$(PY) examples/demo.py

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: install-dev lint
	$(PY) -m pytest -q

bench: install-dev
	$(PY) benchmarks/bench_core.py
	$(PY) benchmarks/int8_variants.py
	$(PY) benchmarks/bench_retrieval.py
	$(PY) benchmarks/bench_server.py
	$(PY) benchmarks/bench_ray.py

eval: install-dev
	lam eval --out results --name eval

# The chain shared by every candidate since session 8, from scratch on this CPU: v0 (the teacher as LAM,
# memory closed) -> embed-300 -> embed-500 -> cloze-150 -> cloze-210; about 65 min of training on 2 cores.
# Outputs under runs/.
train-chain: install-dev
	$(PY) -m lam.teacher runs/v0
	lam distill --model runs/v0 --stage embed --steps 300 --batch-size 8 --lr 2e-3 --out runs/embed-300
	lam distill --model runs/embed-300/model --stage embed --steps 200 --batch-size 8 --lr 1e-3 --seed 1 \
		--out runs/embed-500 --name lam-embed-500
	lam distill --model runs/embed-500/model --stage cloze --steps 150 --batch-size 16 --group 4 \
		--long-segments 6 --passage-tokens 64 --embed-weight 10 --lr 1e-3 --seed 2 --out runs/cloze-150 \
		--name lam-cloze-150
	lam distill --model runs/cloze-150/model --stage cloze --steps 60 --batch-size 16 --group 4 \
		--long-segments 6 --passage-tokens 64 --embed-weight 25 --lr 5e-4 --seed 3 --out runs/cloze-210 \
		--name lam-cloze-210

# lam-v1, the shipped weights (session 11's cloze-330-polish): 120 more cloze steps, then 120 embed steps
# at lr 1e-3 (the polish), then the redundancy gate chosen on dev for them; about 100 min from the teacher.
train-v1: train-chain
	lam distill --model runs/cloze-210/model --stage cloze --steps 120 --batch-size 16 --group 4 \
		--long-segments 6 --passage-tokens 64 --embed-weight 30 --lr 5e-4 --seed 4 --out runs/cloze-330 \
		--name lam-cloze-330
	lam distill --model runs/cloze-330/model --stage embed --steps 120 --batch-size 8 --lr 1e-3 --seed 7 \
		--out runs/cloze-330-polish --name lam-cloze-330-polish
	$(PY) benchmarks/redundancy_gate.py --model runs/cloze-330-polish/model --name cloze-330-polish --apply

# Every distillation candidate of MODEL_CARD.md: lam-v1's chain plus the side branches (long, chain,
# cloze-330's own gate, polish-270, polish-hi-330); about 3 h here.
train: train-v1
	lam distill --model runs/embed-300/model --stage long --steps 225 --batch-size 8 --long-segments 8 \
		--group 4 --lr 2e-3 --out runs/long-225
	lam distill --model runs/embed-300/model --stage chain --steps 100 --batch-size 8 --long-segments 6 \
		--lr 2e-3 --out runs/chain-100
	$(PY) benchmarks/redundancy_gate.py --model runs/cloze-330/model --name cloze-330 --apply
	lam distill --model runs/cloze-210/model --stage embed --steps 60 --batch-size 8 --lr 5e-4 --seed 5 \
		--out runs/polish-270 --name lam-polish-270
	lam distill --model runs/cloze-210/model --stage embed --steps 120 --batch-size 8 --lr 1e-3 --seed 7 \
		--out runs/polish-hi-330 --name lam-polish-hi-330

# The bundled weights (lam-v0-teacher-init: the teacher, memory closed), rebuilt from the teacher package.
weights: install-dev
	$(PY) -m lam.teacher lam/weights/default

# The ship step for lam-v1 (not yet taken: MODEL_CARD.md, session 12): train-v1's model folder, named
# lam-v1, as the bundled weights. Their fusion weights: results/retrieval/fusion-dev-cloze-330-polish.md.
weights-v1: train-v1
	rm -rf lam/weights/default
	cp -r runs/cloze-330-polish/model lam/weights/default
	$(PY) -c "from lam.persistence import rename_model; rename_model('lam/weights/default', 'lam-v1')"
