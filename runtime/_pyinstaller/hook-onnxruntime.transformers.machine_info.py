"""Keep PyTorch and TensorFlow out of frozen apps that use onnxruntime.

``onnxruntime.print_debug_info()`` imports ``onnxruntime.transformers.machine_info``,
which imports torch and tensorflow (inside functions, for its report). PyInstaller
follows such imports, so freezing any onnxruntime app in an environment that has
them installed (edgeclf's own test environment does) would copy gigabytes of
both into the app. Only that diagnostic report loses its torch/tensorflow lines.
"""

excludedimports = ["torch", "tensorflow", "py3nvml"]
