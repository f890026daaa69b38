"""edgesr: lightweight image super-resolution from research to the edge.

``import edgesr`` imports no torch: the runtime layer (``edgesr.runtime``) must work
on machines that only have numpy, OpenCV and ONNX Runtime / TensorRT.
"""

from edgesr.errors import EdgeSRError

__version__ = "0.1.0"

__all__ = ["EdgeSRError", "__version__"]
