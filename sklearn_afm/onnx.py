"""ONNX export of fitted estimators and pipelines, through skl2onnx.

Needs skl2onnx, onnx and onnxruntime: ``pip install "sklearn-afm[onnx]"``.
Call :func:`register` once, then convert with :func:`skl2onnx.to_onnx`; see
:ref:`deployment`.
"""

from ._onnx import register

__all__ = ["register"]
