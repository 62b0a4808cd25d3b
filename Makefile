# Contract tooling. Every target uses the buf binary shipped in node_modules.
BUF := npx --no-install buf

.PHONY: gen lint breaking check-gen test

# Regenerate gen/ from proto/ (protobuf-es v2 and ts-proto, local plugins).
gen:
	$(BUF) generate

# buf lint (STANDARD) over the seqcast contract.
lint:
	$(BUF) lint

# The contract may only grow: compare with main (or BREAKING_AGAINST).
BREAKING_AGAINST ?= .git\#branch=main
breaking:
	$(BUF) breaking --against '$(BREAKING_AGAINST)'

# Fails when gen/ is not what proto/ generates.
check-gen: gen
	@git status --porcelain -- gen | grep . && { echo "gen/ is stale: run 'make gen' and commit"; exit 1; } || echo "gen/ is up to date"

test:
	npm test
