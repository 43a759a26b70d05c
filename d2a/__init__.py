"""d2a: rapid neural architecture search by generating architecture graphs from datasets."""
import os
import sys

# Before torch loads its OpenMP runtime (which reads the setting once, when it loads): threads
# that spin while waiting slow every small op down when cores are shared (a 2-thread
# training step measured 5x slower than 1 thread, a search() call 4.8x slower); sleeping
# costs nothing measurable on an idle machine. A value the user set is kept. Import d2a
# before torch for it to apply (the d2a command always does).
if 'torch' not in sys.modules:
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

from d2a.utils.lazy import defer_pyg_dynamo  # noqa: E402

__version__ = '0.1.0'

__all__ = ['__version__']

# PyG's import would otherwise load torch._dynamo, more than half of a cold search's start-up.
defer_pyg_dynamo()
