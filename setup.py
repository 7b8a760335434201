from setuptools import find_packages, setup


def readme():
    with open('README.md', encoding='utf-8') as f:
        return f.read()


setup(
    name='shufflenet-det',
    version='0.1.0',
    description='ShuffleNet V2 and Light-Head R-CNN for MMDetection 3.x: '
    'the detection experiment (Table 7) of the ShuffleNet V2 paper',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.8',
    # mmcv must be built with its ops: tools/setup/install_mmcv.sh does it (README).
    # torch >= 2.6: torch.load is weights-only by default, so the mmengine
    # loaders this package does not replace cannot run a checkpoint's code
    # either (shufflenet_det/utils/checkpoint.py). mmcv >= 2.1: deploy/fuse.py
    # reads ConvModule.efficient_conv_bn_eval_forward (mmcv PR #2884; 2.0.1
    # called it fast_conv_bn_eval).
    install_requires=[
        'torch>=2.6',
        'torchvision',
        'mmengine>=0.10,<1',
        'mmcv>=2.1.0,<2.2.0',
        'mmdet>=3.3.0,<3.4.0',
        'pycocotools',
    ],
    # pretrain: tools/pretrain.py (ImageNet pretraining of the backbones).
    # mmpretrain 1.2.0 accepts mmcv>=2.0.0,<2.4.0 and mmengine>=0.8.3,<1.0.0
    # (checked at import) and its pip requirements (einops, mat4py,
    # modelindex, ...) name none of torch/mmcv/mmengine/mmdet: it installs
    # beside mmdet 3.3 / mmcv 2.1 / mmengine 0.10 without changing them.
    # deploy: tools/deployment/export_onnx.py and the ONNX Runtime backend
    # of tools/analysis/benchmark.py. The exporter is torch's own
    # (TorchScript-based, which needs no onnxscript); onnx checks and reads
    # the graph, onnxruntime runs it. Neither constrains torch or numpy.
    # openvino / nncf: the OpenVINO backend (shufflenet_det/deploy/
    # openvino.py: the graph at an explicit precision, int8 IR by NNCF).
    # Checked with pip install --dry-run: they add only their own
    # dependencies (openvino-telemetry, scikit-learn, pydot, ...) and
    # change none of torch, torchvision, numpy, onnx, onnxruntime, mmcv,
    # mmengine, mmdet.
    extras_require={
        'pretrain': ['mmpretrain==1.2.0'],
        'deploy': ['onnx==1.23.2', 'onnxruntime==1.31.1',
                   'openvino==2026.4.1', 'nncf==3.4.0'],
        'tests': ['pytest', 'mmpretrain==1.2.0', 'onnx==1.23.2',
                  'onnxruntime==1.31.1', 'openvino==2026.4.1',
                  'nncf==3.4.0'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
