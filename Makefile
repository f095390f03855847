# kefu: one command to run the assistant, one to test it. See README.md.
# the first Python 3.10 that really runs (a pyenv shim may exist without the version)
PYTHON310 ?= $(shell for p in /root/.pyenv/versions/3.10.*/bin/python3.10 $$(command -v python3.10); do \
  $$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && echo $$p && break; done)
VENV      := .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
NLU       ?=

export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 3
# Rasa reports usage and crashes to its servers unless told not to: this machine, and a
# private deployment, talk to no one.
export RASA_TELEMETRY_ENABLED := false

.PHONY: install browser run train lint test test-fast test-slow fuzz deploy-tools deploy-check evaluate validate responses clean nlu-bench nlu-generate chaos bench dialogues fuzz-tools fuzz-api

install: $(STAMP)

# Debian's chromium (and a CJK font) for the browser tests: Playwright drives this binary,
# never a browser build of its own. Installed only when /usr/bin/chromium is absent.
CHROMIUM  := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; \
	  else echo "warning: $(CHROMIUM) missing; run: sudo apt-get install -y chromium fonts-wqy-microhei" >&2; fi; }

$(STAMP): requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $(STAMP)

# $(call tool_venv,VENV,REQUIREMENTS): the recipe of a tool's own small virtualenv beside .venv
# (its pins cannot install beside Rasa 3.6's); the stamp VENV/.installed marks it done
define tool_venv
test -x $(1)/bin/python || $(PYTHON310) -m venv $(1)
$(1)/bin/pip install --quiet --disable-pip-version-check -r $(2)
touch $(1)/.installed
endef

# kubernetes-validate (tests/test_deploy_manifests.py) needs jsonschema>=4.23 and Rasa 3.6 pins
# jsonschema<4.18: it gets a small virtualenv of its own, pinned in deploy/requirements-validate.txt
DEPLOY_VENV  := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
deploy-tools: $(DEPLOY_STAMP)
$(DEPLOY_STAMP): deploy/requirements-validate.txt
	$(call tool_venv,$(DEPLOY_VENV),deploy/requirements-validate.txt)

# schemathesis (make fuzz-api) cannot install beside Rasa 3.6's pins either: .venv-fuzz, pinned
# in bench/requirements-fuzz.txt
FUZZ_VENV  := .venv-fuzz
FUZZ_STAMP := $(FUZZ_VENV)/.installed
fuzz-tools: $(FUZZ_STAMP)
$(FUZZ_STAMP): bench/requirements-fuzz.txt
	$(call tool_venv,$(FUZZ_VENV),bench/requirements-fuzz.txt)

# schemathesis against a running stack's /openapi.json: every operation, anonymous, as an agent
# and as an admin; checks not_a_server_error + response_schema_conformance (minutes; not in
# make test). FUZZ_API_EXAMPLES=… per operation and phase, SEED=… replays a run.
fuzz-api: install fuzz-tools
	$(PY) -m bench.fuzz_api

# deploy/compose.yml against the Compose Specification, deploy/k8s/ with kubernetes-validate
deploy-check: install deploy-tools
	$(PY) -m pytest -q tests/test_deploy_manifests.py

responses: install
	$(PY) -m bot.training.responses

train: install
	$(PY) -m bot.training.model_cache

run: install
	$(PY) -m bot.gateway.launch

# the business pack (KEFU_BUSINESS) checked for completeness (errors name file and key),
# then Rasa's own checks on the domain and data assembled for it
validate: responses
	$(PY) -m bot.business validate --rasa

evaluate: install
	$(PY) -m bot.training.evaluate $(NLU)

# stock Rasa zh pipeline vs char TF-IDF + LR vs config.yml; TRAIN=… TEST=… FOLDS=k optional
nlu-bench: install responses
	$(PY) -m bench.nlu_bench $(if $(TRAIN),--train $(TRAIN)) $(if $(TEST),--test $(TEST)) $(if $(FOLDS),--folds $(FOLDS)) $(if $(SYSTEMS),--systems $(SYSTEMS))

# data/nlu/generated.yml from data/generate/ (seeded; tests/test_nlu_generated.py checks it is fresh)
nlu-generate: install
	$(PY) data/generate

chaos: install
	$(PY) -m bench.chaos

# multi-turn conversations through the real stack (tests/dialogues_blind/README.md):
# prints every failure and "N/M conversations fully correct"; SET=… ONLY=d001,d002 optional
dialogues: install
	$(PY) -m bench.dialogues $(if $(SET),--set $(SET)) $(if $(ONLY),--only $(ONLY))

# load benchmark: project vs direct Rasa vs stock `rasa init` config (minutes; prints a JSON line)
# SCALE=2: two gateways + two Rasa replicas on PostgreSQL + Redis (deploy/scaled.py)
SCALE ?= 1
bench: install
	$(PY) -m bench.run --scale $(SCALE) $(BENCH_ARGS)

# the lint (ruff) and the import rule (import-linter contracts in pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: install browser deploy-tools lint
	$(PY) -m pytest -m "not slow"

# the benchmarks that also run as tests (the blind conversation set; minutes): make test skips them
test-slow: install browser
	$(PY) -m pytest -m slow

test-fast: install deploy-tools lint
	$(PY) -m pytest -m "not e2e and not slow"

# Property tests with new random examples, many of them (make test draws the same ones every
# run: tests/conftest.py). FUZZ_EXAMPLES per property; SEED=… replays a run it printed.
FUZZ_EXAMPLES ?= 5000
FUZZ_TESTS    ?= $(shell grep -l "from hypothesis import" tests/test_*.py)
fuzz: install
	@seed=$${SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; echo "hypothesis seed $$seed (SEED=$$seed make fuzz replays it)"; \
	HYPOTHESIS_PROFILE=explore HYPOTHESIS_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -m "not e2e" -p no:cacheprovider \
	  --hypothesis-profile=explore --hypothesis-seed=$$seed $(FUZZ_TESTS)

clean:
	rm -rf results .pytest_cache var/logs
