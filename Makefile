# The commands of README.md. Each one sets up first if needed (tools/setup.sh
# returns at once when the set-up is complete).
PY := .venv/bin/python

.PHONY: setup test demo data clean-data

setup:
	bash tools/setup.sh

test: setup
	$(PY) -m pytest tests -q

data: setup
	$(PY) tools/data/make_shapes.py --out data/shapes
