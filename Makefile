# The commands of README.md. Each one sets up first if needed
# (tools/setup/setup.sh returns at once when the set-up is complete).
PY := .venv/bin/python

DEMO_CFG := configs/demo/lighthead_v2star_shapes.py
DEMO_DIR := work_dirs/demo
# The demo's dataset: objects of 32 px and up, at most 5 per image, each in
# its class's colour.
DATA_ARGS := --num-train 600 --num-val 100 --min-object-size 32 \
	--max-objects 5 --random-color-prob 0
# demo-pretrained: the backbone first pretrained on the objects' crops.
PRE_CFG := configs/demo/lighthead_v2star_shapes_pretrained.py
PRE_PRETRAIN_CFG := configs/demo/pretrain_v2star_40m_shapes_crops.py
PRE_DIR := work_dirs/demo_pretrained

.PHONY: setup test demo demo-pretrained data

setup:
	bash tools/setup/setup.sh

test: setup
	$(PY) -m pytest tests -q

data: setup
	$(PY) tools/data/make_shapes.py --out data/shapes $(DATA_ARGS)

# The embedded demo: generate data/shapes, train Light-Head R-CNN +
# ShuffleNet V2* (40M) from scratch on CPU (resuming a run that is there),
# evaluate COCO mAP, draw the detections, plot the curves, and run
# tools/infer.py on a few images.
demo: data
	$(PY) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_DIR) --resume
	$(PY) tools/test.py $(DEMO_CFG) $$(cat $(DEMO_DIR)/last_checkpoint) \
		--work-dir $(DEMO_DIR) --show-dir vis
	$(PY) tools/analysis/plot_curves.py $(DEMO_DIR)
	$(PY) tools/infer.py $(DEMO_CFG) $$(cat $(DEMO_DIR)/last_checkpoint) \
		data/shapes/val/val_0000[0-7].jpg --out-dir $(DEMO_DIR)/infer

# The ImageNet -> COCO pipeline in miniature: pretrain the backbone on the
# objects cut out of data/shapes, then train the detector from it.
demo-pretrained: data
	$(PY) tools/data/make_shapes_crops.py --data data/shapes \
		--out data/shapes_crops
	$(PY) tools/pretrain.py $(PRE_PRETRAIN_CFG) \
		--work-dir $(PRE_DIR)/pretrain --resume
	mkdir -p checkpoints && cp $$(cat $(PRE_DIR)/pretrain/last_checkpoint) \
		checkpoints/shufflenetv2star_40m_shapes.pth
	$(PY) tools/train.py $(PRE_CFG) --work-dir $(PRE_DIR) --resume
	$(PY) tools/test.py $(PRE_CFG) $$(cat $(PRE_DIR)/last_checkpoint) \
		--work-dir $(PRE_DIR) --show-dir vis
