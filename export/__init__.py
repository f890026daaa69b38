"""PyTorch -> simplified ONNX (imports torch, onnx, onnxsim)."""
