"""Refuse a CUDA build of PyTorch on a machine without a GPU (it costs several GB for nothing)."""

import shutil
import sys

import torch

if torch.version.cuda is not None and shutil.which("nvidia-smi") is None:
    sys.exit(
        f"actlab: pip installed a CUDA build of PyTorch ({torch.__version__}) on a machine "
        "without a GPU. Remove .venv and install the CPU build, e.g. "
        "`make install TORCH_PIP_ARGS='--index-url <CPU wheel index>'`."
    )
print(f"actlab: torch {torch.__version__} (cuda: {torch.version.cuda})")
