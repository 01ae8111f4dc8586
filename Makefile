# One command per job; each installs what it needs first (torch's CPU wheel before anything
# that depends on torch, so pip never pulls the CUDA build).
PY ?= python3
PIP = $(PY) -m pip install --quiet

.PHONY: install install-dev demo test lint bench eval train train-chain v1-model train-v1 accept-v1 cloze-idf long-model \
	accept-long weights weights-v1

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
# memory closed) -> embed-300 -> embed-500 -> cloze-150 -> cloze-210; about 65 min of training on a
# 2-core Xeon with AMX, twice that on the slower kind. Outputs under runs/. Each stage is a file target
# (its summary.json, written last) run with --resume: a stage already done is skipped and one killed
# midway continues from its last checkpoint (every 50 steps), so the chain can span sessions and still
# give the same weights (no dropout, per-step data seeds, the optimiser state in the checkpoint).
DISTILL = lam distill --resume
CHAIN = runs/cloze-210/summary.json

runs/v0/config.json:
	$(PY) -m lam.teacher runs/v0

runs/embed-300/summary.json: runs/v0/config.json
	$(DISTILL) --model runs/v0 --stage embed --steps 300 --batch-size 8 --lr 2e-3 --out runs/embed-300

runs/embed-500/summary.json: runs/embed-300/summary.json
	$(DISTILL) --model runs/embed-300/model --stage embed --steps 200 --batch-size 8 --lr 1e-3 --seed 1 \
		--out runs/embed-500 --name lam-embed-500

runs/cloze-150/summary.json: runs/embed-500/summary.json
	$(DISTILL) --model runs/embed-500/model --stage cloze --steps 150 --batch-size 16 --group 4 \
		--long-segments 6 --passage-tokens 64 --embed-weight 10 --lr 1e-3 --seed 2 --out runs/cloze-150 \
		--name lam-cloze-150

runs/cloze-210/summary.json: runs/cloze-150/summary.json
	$(DISTILL) --model runs/cloze-150/model --stage cloze --steps 60 --batch-size 16 --group 4 \
		--long-segments 6 --passage-tokens 64 --embed-weight 25 --lr 5e-4 --seed 3 --out runs/cloze-210 \
		--name lam-cloze-210

train-chain: install-dev
	$(MAKE) $(CHAIN)

# lam-v1's model folder (session 11's cloze-330-polish): 120 more cloze steps, then 120 embed steps at
# lr 1e-3 (the polish); about 85 min from the teacher on a 2-core Xeon with AMX (2 h without). The
# weights are bit-for-bit the same on one machine type, not across types (sha256 4c2c90b2... with AMX,
# 35dbf798... without, both with the kernel before cbcaa82; a rebuild with today's kernel gives new
# weights): lam.evaluation.acceptance keys its records on the sha256.
V1_MODEL = runs/cloze-330-polish/model
V1_FUSION = 0.75,0.25,1,0.5

runs/cloze-330/summary.json: $(CHAIN)
	$(DISTILL) --model runs/cloze-210/model --stage cloze --steps 120 --batch-size 16 --group 4 \
		--long-segments 6 --passage-tokens 64 --embed-weight 30 --lr 5e-4 --seed 4 --out runs/cloze-330 \
		--name lam-cloze-330

runs/cloze-330-polish/summary.json: runs/cloze-330/summary.json
	$(DISTILL) --model runs/cloze-330/model --stage embed --steps 120 --batch-size 8 --lr 1e-3 --seed 7 \
		--out runs/cloze-330-polish --name lam-cloze-330-polish

v1-model: install-dev
	$(MAKE) runs/cloze-330-polish/summary.json

# v1-model, then the gate search on dev that chose its gate (it keeps the default, tau 0.15, p 3, so
# the folder is left as it is: results/distill/redundancy-gate-cloze-330-polish.md).
train-v1: v1-model
	$(PY) benchmarks/redundancy_gate.py --model $(V1_MODEL) --name cloze-330-polish --apply

# Issue 5's acceptance with v1-model's weights and their fusion weights (chosen on dev:
# results/retrieval/fusion-dev-cloze-330-polish.md), in parts that each keep their record under
# results/retrieval/acceptance-<sha256[:8]>/; parts already measured on the same weights are skipped,
# so it resumes where an earlier session stopped. 2-3 h here in all. Needs $(V1_MODEL).
accept-v1:
	$(PY) -m lam.evaluation.acceptance --model $(V1_MODEL) --fusion-weights $(V1_FUSION)

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
	$(MAKE) long-model cloze-idf

# Session 20's candidate: polish-hi-330 (120 embed steps at lr 1e-3 from cloze-210; 80 min from the
# teacher on a 2-core AMD EPYC, sha256 a5ecac6c... there) in a folder whose pool keeps the gated mean
# on texts of at most 510 text tokens (what the teacher sees whole) and is segment IDF with df + 0.2·S
# beyond; c = 0.2 is the best mean of QMSum val query and answer nDCG@10 over c in {0, .05, .1, .15, .2}
# (results/distill/qmsum-token-weights-polish-hi-330-gate.md), the rule fixed before the run.
LONG_MODEL = runs/polish-hi-330-long

runs/polish-hi-330/summary.json: $(CHAIN)
	$(DISTILL) --model runs/cloze-210/model --stage embed --steps 120 --batch-size 8 --lr 1e-3 --seed 7 \
		--out runs/polish-hi-330 --name lam-polish-hi-330

long-model: install-dev
	$(MAKE) runs/polish-hi-330/summary.json
	rm -rf $(LONG_MODEL) && cp -r runs/polish-hi-330/model $(LONG_MODEL)
	$(PY) -c "from lam.persistence import configure_model; configure_model('$(LONG_MODEL)', token_idf=True, \
		idf_passage_tokens=0, idf_min_text_tokens=510, idf_df_offset=0.2, name='lam-polish-hi-330-long')"

# The candidate's two acceptances, each in parts keyed on the weights' sha256 and pool, so either resumes
# where an earlier session stopped on the same machine type (lam.evaluation.parts): issue 4's figures
# against the baselines (lam.evaluation.model_acceptance, results/distill/acceptance-<sha8>/; about 2 h
# here, the baselines' parts reused by every model) and issue 5's through the search engine with the fusion
# weights chosen for it on dev (results/retrieval/fusion-dev-polish-hi-330-long.md; 2-3 h). Needs
# $(LONG_MODEL).
LONG_FUSION = 0.75,0.5,1,1

accept-long:
	$(PY) -m lam.evaluation.model_acceptance --model $(LONG_MODEL)
	$(PY) -m lam.evaluation.acceptance --model $(LONG_MODEL) --fusion-weights $(LONG_FUSION)

# Session 19's branch: v1-model's folder with passage IDF over the teacher's 510 text tokens, then the
# cloze stage trained through that pool (--pool idf) on 10-segment texts, 60 + 60 steps; about 1 h here.
cloze-idf: v1-model
	rm -rf runs/cloze-330-polish-p510 && cp -r $(V1_MODEL) runs/cloze-330-polish-p510
	$(PY) -c "from lam.persistence import configure_model; configure_model('runs/cloze-330-polish-p510', idf_passage_tokens=510)"
	$(DISTILL) --model runs/cloze-330-polish-p510 --stage cloze --pool idf --steps 60 --batch-size 16 --group 4 \
		--long-segments 10 --passage-tokens 64 --embed-weight 30 --lr 5e-4 --seed 8 --out runs/cloze-idf-390 \
		--name lam-cloze-idf-390
	$(DISTILL) --model runs/cloze-idf-390/model --stage cloze --pool idf --steps 60 --batch-size 16 --group 4 \
		--long-segments 10 --passage-tokens 64 --embed-weight 40 --lr 5e-4 --seed 9 --out runs/cloze-idf-450 \
		--name lam-cloze-idf-450

# The teacher-initialised weights (lam-v0-teacher-init: the teacher, memory closed; bundled until session 21),
# rebuilt from the teacher package over the bundled folder.
weights: install-dev
	$(PY) -m lam.teacher lam/weights/default

# The ship step for lam-v1 (taken in session 21, MODEL_CARD.md): the long model's folder, once
# both of accept-long's acceptances hold for exactly these weights and this pool, named lam-v1, as the
# bundled weights; then FusionWeights' defaults become LONG_FUSION.
weights-v1: long-model
	$(PY) -m lam.evaluation.model_acceptance --model $(LONG_MODEL) --check
	$(PY) -m lam.evaluation.acceptance --model $(LONG_MODEL) --fusion-weights $(LONG_FUSION) --check
	rm -rf lam/weights/default
	cp -r $(LONG_MODEL) lam/weights/default
	$(PY) -c "from lam.persistence import rename_model; rename_model('lam/weights/default', 'lam-v1')"
