# Switchboard: `make run` brings the suite up on embedded engines, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GEN := gen/python
DESCRIPTOR := gen/descriptor.binpb
PROTO_FILES := $(shell find protos -name '*.proto' | sort)
VENDORED_PROTOS := third_party/protovalidate/buf/validate/validate.proto
ERROR_DETAIL_PROTOS := third_party/googleapis/google/rpc/error_details.proto \
	third_party/googleapis/google/rpc/status.proto
PROTO_INCLUDES := -I protos -I third_party/googleapis -I third_party/protovalidate
SOURCE_ROOTS := $(GEN) libs/runtime libs/devstack libs/standins services/gateway services/identity \
	services/conversation services/llm-router services/connectors
PYTEST_ARGS ?=

.PHONY: help venv proto lint test test-unit test-integration test-e2e run bench bench-router lock clean \
	helm-assets docker-requirements

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv with the pinned dependencies

$(STAMP): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@# Our source roots go on sys.path through a .pth file: no packaging step, no PYTHONPATH.
	@site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	  printf '%s\n' $(addprefix $(CURDIR)/,$(SOURCE_ROOTS)) > "$$site/switchboard-dev.pth"
	@touch $@

proto: $(DESCRIPTOR) ## Generate Python messages, gRPC stubs, .pyi stubs and Envoy's descriptor set

$(DESCRIPTOR): $(STAMP) $(PROTO_FILES) $(VENDORED_PROTOS) Makefile
	rm -rf gen && mkdir -p $(GEN)
	$(PY) -m grpc_tools.protoc $(PROTO_INCLUDES) \
	  --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
	  --plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
	  --python_out=$(GEN) --grpc_python_out=$(GEN) --mypy_out=quiet:$(GEN) --mypy_grpc_out=quiet:$(GEN) \
	  $(PROTO_FILES) $(VENDORED_PROTOS)
	@# Envoy renders error details (google.rpc.BadRequest, RetryInfo) only for types in the set.
	$(PY) -m grpc_tools.protoc $(PROTO_INCLUDES) --include_imports --include_source_info \
	  --descriptor_set_out=$(DESCRIPTOR) $(PROTO_FILES) $(ERROR_DETAIL_PROTOS)

lint: proto ## buf lint, ruff, mypy, and the vendored protovalidate proto against the installed runtime
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf build -o /dev/null
	$(PY) tools/proto_vendor/check_validate_proto.py >/dev/null
	$(VENV)/bin/ruff check libs services tests tools bench deploy
	$(VENV)/bin/ruff format --check libs services tests tools bench deploy
	$(PY) -m mypy

test: lint ## Run the whole test suite (unit, integration, e2e) on real engines
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-unit: proto ## Only the unit tests
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: proto ## Only the integration tests
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: proto ## Only the end-to-end tests (whole stack)
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

run: proto ## Start the whole suite on embedded engines (Ctrl-C stops it)
	$(PY) -m switchboard_devstack run

bench: proto ## Run the benchmarks; results in bench/results/latest.json
	$(PY) bench/run.py

bench-router: proto ## Only the router benchmark (installs litellm[proxy] into bench/.venvs first)
	$(PY) bench/run.py router_bench.py

helm-assets: proto ## Regenerate the chart's Envoy config and descriptor (deploy/helm/switchboard/files)
	$(PY) -m switchboard_devstack.helm_assets

docker-requirements: $(STAMP) ## Re-pin the image's runtime requirements from requirements.lock
	$(PY) deploy/docker/pin_requirements.py

lock: ## Re-pin requirements.lock from requirements.in in a clean venv
	rm -rf /tmp/switchboard-lock && $(PYTHON) -m venv /tmp/switchboard-lock
	/tmp/switchboard-lock/bin/pip install --quiet -r requirements.in
	{ echo "# Full pinned dependency tree, installed by 'make venv'. Regenerate with 'make lock' after editing requirements.in."; \
	  /tmp/switchboard-lock/bin/pip freeze; } > requirements.lock
	/tmp/switchboard-lock/bin/python deploy/docker/pin_requirements.py

clean: ## Remove generated code and the venv (keeps .data)
	rm -rf gen $(VENV) .pytest_cache .mypy_cache .ruff_cache
