"""Detector FLOPs through mmengine's analysis (a jit trace counted per op;
``tools/analysis/flops.py`` is the command line).

mmengine's ``FlopAnalyzer`` counts one multiply-add as one FLOP and skips
ops it has no handle for; for Light-Head R-CNN that is torchvision's
``ps_roi_align``, which :func:`ps_roi_align_flop_jit` counts (the one thing
ours adds to mmengine's). NMS (RPN proposals and the final detections) has
no fixed cost: it depends on the boxes, and is left out of the count
(noted in the report).
"""
from collections import Counter
from functools import partial

import torch

from ..utils.inputs import mmdet_batch


def _shape(value):
    return value.type().sizes()


def ps_roi_align_flop_jit(inputs, outputs):
    """PSRoIAlign: every output element (rois x channels x bins) averages
    ``sampling_ratio ** 2`` bilinear samples of 4 multiply-adds each.

    ``inputs`` are the traced op's arguments: (feature, rois, spatial_scale,
    output_h, output_w, sampling_ratio)."""
    out = _shape(outputs[0])
    sampling_ratio = inputs[5].toIValue()
    samples = max(int(sampling_ratio), 1)**2
    elements = 1
    for d in out:
        elements *= d
    return Counter({'ps_roi_align': elements * samples * 4})


#: op name -> handle, for what mmengine's FlopAnalyzer does not count.
EXTRA_HANDLES = {'torchvision::ps_roi_align': ps_roi_align_flop_jit}


def detector_flops(model, shape=(800, 1200)):
    """FLOPs (multiply-adds) of ``model`` on one image of ``shape`` in test
    mode, total and by top-level module. Returns (total, {module: flops},
    skipped op names)."""
    from mmengine.analysis import FlopAnalyzer

    data = model.data_preprocessor(
        mmdet_batch([torch.zeros(3, *shape, dtype=torch.uint8)]), False)
    model.eval()
    forward = model.forward
    model.forward = partial(forward, data_samples=data['data_samples'],
                            mode='tensor')
    try:
        analyzer = FlopAnalyzer(model, data['inputs'])
        for op, handle in EXTRA_HANDLES.items():
            analyzer.set_op_handle(op, handle)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        total = analyzer.total()
        by_module = {k: v for k, v in analyzer.by_module().items()
                     if k and '.' not in k and v}
        skipped = sorted(analyzer.unsupported_ops())
    finally:
        model.forward = forward
    return total, by_module, skipped


#: top-level module -> the name the report gives it.
PART_NAMES = {'backbone': 'backbone', 'rpn_head': 'RPN',
              'thin_map': 'thin map',
              'roi_head': 'R-CNN head (PSRoIAlign + fc)',
              'neck': 'neck'}


def report_lines(name, shape, total, by_module, skipped):
    """The report of :func:`detector_flops`: the total in GFLOPs, each part
    with its share, what is not counted."""
    lines = [f'{name} at {shape[0]}x{shape[1]}: {total / 1e9:.2f} GFLOPs '
             '(multiply-adds)']
    for module, flops in sorted(by_module.items(), key=lambda kv: -kv[1]):
        lines.append(f'  {PART_NAMES.get(module, module):<32} '
                     f'{flops / 1e9:8.3f} G '
                     f'({100 * flops / max(total, 1):5.1f}%)')
    lines.append('  not counted: NMS (depends on the boxes)'
                 + (f'; ops without a handle: {", ".join(skipped)}'
                    if skipped else ''))
    return lines
