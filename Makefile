# Everyday commands. The virtualenv lives in .venv/.
PY := .venv/bin/python

.PHONY: install run test lint schema bench constraints

install:
	python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e '.[test]'

run:
	.venv/bin/marketgraph serve

test:
	.venv/bin/pytest

lint:
	.venv/bin/ruff check graph domain infra tests bench
	.venv/bin/ruff format --check graph domain infra tests bench
	.venv/bin/mypy --strict graph domain infra tests bench

schema:
	.venv/bin/marketgraph export-schema > schema.graphql

bench:
	$(PY) bench/run.py

constraints:
	{ echo "# Exact versions CI and the Dockerfile install (pip install -c constraints.txt ...)."; \
	  echo "# Regenerate after changing dependencies: make constraints"; \
	  .venv/bin/pip freeze --exclude-editable | grep -v '^marketgraph'; } > constraints.txt
