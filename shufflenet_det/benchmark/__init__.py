"""Measuring detectors: wall-clock timing as Table 7 times (host images to
detections), memory, the environment a figure depends on, FLOPs, the
per-stage profile and backbone speeds.

    from shufflenet_det.benchmark import time_interleaved
"""
from .timing import (PeakRSS, describe_device, environment,
                     time_interleaved)

__all__ = ['PeakRSS', 'describe_device', 'environment', 'time_interleaved']
