"""What a benchmark ran on, printed at its top: machines differ (AVX-512 and bfloat16 on some,
AVX2 only on others; cores; PyTorch's build)."""

import os
import platform


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [name for name in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
                            if name in flags]
    except OSError:
        pass
    return []


def describe():
    """One line: CPU, cores, vector extensions, Python, PyTorch and ONNX Runtime versions, GPU."""
    parts = [f"{cpu_model()}, {os.cpu_count()} cores", "+".join(cpu_flags()) or "no AVX2",
             f"Python {platform.python_version()}"]
    try:
        import torch

        parts.append(f"torch {torch.__version__}")
        if torch.cuda.is_available():
            parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    except ImportError:
        pass
    try:
        import onnxruntime

        parts.append(f"onnxruntime {onnxruntime.__version__}")
    except ImportError:
        pass
    return "ran on: " + "; ".join(parts)
