# compare: exact
# env: CUDA_MODULE_LOADING=EAGER
# timeout: 300
"""CUDA_MODULE_LOADING=EAGER: the same checks as env_module_lazy.py (the
loading mode the driver reports, and a spread of kernels from different
libtorch modules giving the same results), with every module loaded when
it is registered."""
import _common
from env_module_lazy import main

if __name__ == "__main__":
    _common.run(main)
