"""edgeclf.quantize: int8 quantization, pruning and accuracy gates.

Needs ``pip install edgeclf[export]`` (onnx, onnxruntime's quantization
tools); heavy imports happen inside the functions.
"""
