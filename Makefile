# The two commands: `make run` serves the whole API locally, `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DB_SERVER ?= mysql://root@127.0.0.1:3306
# The local API's database (override DATABASE_URL to use another server).
DATABASE_URL ?= $(DB_SERVER)/shop
# Per-test databases are created by the tests; this one only holds their bookkeeping.
TEST_DATABASE_URL ?= $(DB_SERVER)/shop_test_registry
# Holds the migrated schema the compile-time checked queries are verified against.
CHECK_DATABASE_URL ?= $(DB_SERVER)/shop_sqlx_check
LOCAL_JWT_SECRET ?= local-development-signing-key-do-not-deploy
# Seals webhook signing secrets in the local database (Secrets Manager on AWS).
LOCAL_WEBHOOK_KEY ?= local-development-webhook-sealing-key-do-not-deploy
ADMIN_EMAIL ?= admin@shop.local
ADMIN_PASSWORD ?= admin-password-123
# Local servers listen on loopback only: the local signing key and admin password are
# published. HOST=0.0.0.0 offers them to the network.
HOST ?= 127.0.0.1
PORT ?= 9000
SERVE_PORT ?= 8080
CONCURRENCY ?= 4
# How long a pending order holds its stock, how many pending orders a customer may hold,
# and how often the local sweep runs.
ORDER_HOLD_SECONDS ?= 1800
MAX_PENDING_ORDERS ?= 10
SWEEP_EVERY_SECONDS ?= 60
# make serve's build: optimised like the deployed functions; PROFILE=dev builds faster.
PROFILE ?= release

export SQLX_OFFLINE := true
# .ci/ensure-db looks for the server DB_SERVER names.
export DB_SERVER

STACK ?= shop-api
# The crates deployed as Lambda functions (every crate under functions/, migrate included),
# and those of them that serve the API's routes (openapi.json's x-function).
FUNCTIONS = $(shell .ci/routes functions)
HTTP_FUNCTIONS = $(shell .ci/routes functions --http)

.PHONY: help run serve db reset test test-deployed lint sqlx-check admin prepare bench template-check routes routes-recipe package bench-profiles deploy deployed-admin
help:
	@echo "make run    - serve the whole API on http://$(HOST):$(PORT) (database, migrations, sample data; first build: minutes)"
	@echo "make test   - formatting, lints, query data, and every test against a real MariaDB"
	@echo "make reset  - put the local database back to the sample data and the local admin"
	@echo "make serve  - the same API on one plain HTTP port ($(SERVE_PORT)), without the Lambda emulator (PROFILE=dev builds faster)"
	@echo "make db     - only the local database: created, migrated, sample data and the local admin"
	@echo "make test-deployed - sam build + sam deploy of template.yaml to a local AWS emulator, tested through its API Gateway"
	@echo "make bench  - latency, throughput, cold start, size and memory beside their floors (BENCHMARKS.md)"
	@echo "make bench-profiles - the release profile chosen by CPU per request (each candidate built and measured), then make bench: BENCHMARKS.md in one run (about an hour)"
	@echo "make admin EMAIL=... PASSWORD=... - create (or promote) an admin in DATABASE_URL"
	@echo "make prepare - refresh the committed .sqlx query data after changing a query"
	@echo "make routes - after editing openapi.json's routes or adding a function: write the router table, serve's functions and tools' dependencies"
	@echo "Settings: PORT=$(PORT) SERVE_PORT=$(SERVE_PORT) HOST=$(HOST) ORDER_HOLD_SECONDS=$(ORDER_HOLD_SECONDS) MAX_PENDING_ORDERS=$(MAX_PENDING_ORDERS) SWEEP_EVERY_SECONDS=$(SWEEP_EVERY_SECONDS) CONCURRENCY=$(CONCURRENCY)"

## The local commands run .ci/local-api, which says what it does step by step. Their settings
## reach it through the environment, so the echoed commands show no secret.
db reset run serve: export DATABASE_URL := $(DATABASE_URL)
db reset run serve: export ADMIN_EMAIL := $(ADMIN_EMAIL)
db reset run serve: export ADMIN_PASSWORD := $(ADMIN_PASSWORD)
run serve: export JWT_SECRET := $(LOCAL_JWT_SECRET)
run serve: export WEBHOOK_KEY := $(LOCAL_WEBHOOK_KEY)
# A developer's own receiver on http://127.0.0.1:<port> or http://localhost:<port>.
run serve: export WEBHOOK_ALLOW_LOOPBACK := true
run serve: export HOST := $(HOST)
run serve: export ORDER_HOLD_SECONDS := $(ORDER_HOLD_SECONDS)
run serve: export MAX_PENDING_ORDERS := $(MAX_PENDING_ORDERS)
run: export PORT := $(PORT)
run: export CONCURRENCY := $(CONCURRENCY)
run: export SWEEP_EVERY_SECONDS := $(SWEEP_EVERY_SECONDS)
serve: export PORT := $(SERVE_PORT)
serve: export PROFILE := $(PROFILE)

## Local database: created, migrated, sample data (once) and the local admin loaded.
db:
	@.ci/local-api db

## Puts the local database back as a fresh machine has it: sample data and the local admin.
reset:
	@.ci/local-api reset

## Every function under `cargo lambda watch`, at API Gateway's paths, the sweep on a timer.
run:
	@.ci/local-api run

## The same routers on one plain HTTP port (no Lambda emulation): benchmarks, fuzzing, containers.
serve:
	@.ci/local-api serve

## Latency, throughput, cold start, size and memory; writes BENCHMARKS.md. Run `make package`
## first for the arm64 bootstrap sizes.
bench:
	@.ci/ensure-db
	@.ci/ensure-tools wrk
	cargo build --release -p tools $(addprefix -p ,$(HTTP_FUNCTIONS)) --bins
	cargo run --release -q -p tools --bin bench

## The release profile by measurement: serve and two functions built with each candidate
## profile, measured side by side; writes its table into BENCHMARKS.md (about an hour).
bench-profiles:
	@.ci/ensure-db
	.ci/bench-profiles

admin:
	@test -n "$(EMAIL)" -a -n "$(PASSWORD)" || { echo "usage: make admin EMAIL=you@example.com PASSWORD=..."; exit 2; }
	@DATABASE_URL=$(DATABASE_URL) cargo run -q -p tools --bin shopctl -- admin "$(EMAIL)" "$(PASSWORD)" "$(or $(NAME),Admin)"

## Formatting, clippy, and the layers: no upward dependency, no HTTP in the domain, no
## import cycle, no production file over 400 lines (the check also proves it catches each).
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings
	.ci/check-layers --self-test
	.ci/check-layers

## Fails when .sqlx no longer matches the queries in the code (run `make prepare`).
sqlx-check:
	@.ci/ensure-tools sqlx
	DATABASE_URL=$(CHECK_DATABASE_URL) cargo sqlx database reset -y --source migrations
	DATABASE_URL=$(CHECK_DATABASE_URL) SQLX_OFFLINE=false cargo sqlx prepare --workspace --check -- --all-targets --all-features

prepare:
	@.ci/ensure-tools sqlx
	DATABASE_URL=$(CHECK_DATABASE_URL) cargo sqlx database reset -y --source migrations
	DATABASE_URL=$(CHECK_DATABASE_URL) SQLX_OFFLINE=false cargo sqlx prepare --workspace -- --all-targets --all-features

test:
	@.ci/ensure-db
	@.ci/ensure-tools moto sqlx sam schemathesis
	@DATABASE_URL=$(TEST_DATABASE_URL) cargo sqlx database create
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory sqlx-check
	$(MAKE) --no-print-directory template-check
	$(MAKE) --no-print-directory routes-recipe
	DATABASE_URL=$(TEST_DATABASE_URL) .ci/with-moto .ci/with-tls-db cargo test --workspace --all-features --no-fail-fast
	cargo build -q -p tools --bin serve
	DATABASE_SERVER=$(DB_SERVER) SERVE_BIN=$${CARGO_TARGET_DIR:-target}/debug/serve .ci/schemathesis
	DATABASE_URL=$(TEST_DATABASE_URL) SERVE_BIN=$${CARGO_TARGET_DIR:-target}/debug/serve .ci/docs-browser-check
	@.ci/ensure-tools cargo-lambda
	DB_SERVER=$(DB_SERVER) .ci/local-run-check
	$(MAKE) --no-print-directory test-deployed

## The real template.yaml, built by `sam build` and deployed by `sam deploy` to MiniStack (a
## local AWS emulator: no account, no Docker), then tested through its API Gateway.
test-deployed:
	DB_SERVER=$(DB_SERVER) .ci/test-deployed

## The SAM template: SAM's own checks, cfn-lint, the routes (template.yaml's HttpApi events
## are openapi.json's, every crate under functions/ has its function, and what `make routes`
## writes is current; the check also proves it catches each drift), and the production
## pieces (concurrency, alarms, canaries, database user, TLS, throttles) on the translated
## template.
template-check:
	@.ci/ensure-tools sam
	SAM_CLI_TELEMETRY=0 sam validate --lint
	cfn-lint template.yaml
	.ci/routes check --self-test
	.ci/routes check
	python3 -m pytest -q -p no:cacheprovider .ci/test_template.py

## The one route table is openapi.json (each path's x-function): this writes the places that
## repeat it (Cargo.toml's watch router, tools/src/functions.rs, tools/Cargo.toml).
routes:
	.ci/routes write

## The README's recipe for adding a function, followed in a scratch copy: a dummy function
## added by touching only the files it names must pass the route check, lint and the
## routes test.
routes-recipe:
	.ci/routes-recipe

## Release arm64 bootstraps, built the way `sam build` builds them, and their sizes.
package:
	@.ci/ensure-tools cargo-lambda
	cargo lambda build --release --arm64 $(addprefix -p ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do \
		b="$${CARGO_TARGET_DIR:-target}/lambda/$$f/bootstrap"; \
		printf '%-11s %6d KiB  %s\n' "$$f" $$(( $$(wc -c < "$$b") / 1024 )) "$$b"; \
	done

## Build and deploy the stack (.ci/deployed/deploy.py): first what the account and the
## parameters allow (Lambda concurrency quota, connections, throttles, the beta opt-in,
## the architecture), refused before anything is made; then sam build for the stack's
## Architecture and sam deploy. A new stack is created without the cluster's deletion
## protection, which the next step turns on. First time: `make deploy GUIDED=1` (asks for
## the region and the parameters, and saves them in samconfig.toml). CHECK_ONLY=1: the
## checks alone.
deploy: template-check
	python3 .ci/deployed/deploy.py $(if $(GUIDED),--guided) $(if $(CHECK_ONLY),--check-only)

## First admin of the deployed stack (asks for the password; it never reaches the command
## line or the shell history): make deployed-admin EMAIL=you@example.com [NAME="Your Name"]
deployed-admin:
	@test -n "$(EMAIL)" || { echo "usage: make deployed-admin EMAIL=you@example.com [NAME=...] [STACK=$(STACK)]"; exit 2; }
	@fn=$$(aws cloudformation describe-stacks --stack-name "$(STACK)" \
		--query "Stacks[0].Outputs[?OutputKey=='MigrateFunctionName'].OutputValue" --output text) && \
	read -rs -p "Password for $(EMAIL): " pw && echo && \
	payload=$$(umask 077 && mktemp) && trap 'rm -f "$$payload"' EXIT && \
	EMAIL="$(EMAIL)" NAME="$(or $(NAME),Admin)" PW="$$pw" python3 -c 'import json, os; print(json.dumps({"create_admin": {"email": os.environ["EMAIL"], "password": os.environ["PW"], "name": os.environ["NAME"]}}))' > "$$payload" && \
	aws lambda invoke --function-name "$$fn" --cli-binary-format raw-in-base64-out \
		--payload "file://$$payload" /dev/stdout && echo
