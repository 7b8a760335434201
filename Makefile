# The commands of README.md. Each one sets up first if needed (tools/setup.sh
# returns at once when the set-up is complete).
PY := .venv/bin/python

DEMO_CFG := configs/demo/lighthead_v2star_shapes.py
DEMO_DIR := work_dirs/demo

.PHONY: setup test demo data

setup:
	bash tools/setup.sh

test: setup
	$(PY) -m pytest tests -q

data: setup
	$(PY) tools/data/make_shapes.py --out data/shapes

# The embedded demo: generate data/shapes, train Light-Head R-CNN + ShuffleNet
# V2* on CPU (resuming if a run is there), evaluate COCO mAP, draw detections.
demo: data
	$(PY) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_DIR) --resume
	$(PY) tools/test.py $(DEMO_CFG) $$(cat $(DEMO_DIR)/last_checkpoint) \
		--work-dir $(DEMO_DIR) --show-dir vis
