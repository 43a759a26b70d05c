"""d2a: rapid neural architecture search by generating architecture graphs from datasets."""
from d2a.utils.lazy import defer_pyg_dynamo

__version__ = '0.1.0'

__all__ = ['__version__']

# PyG's import would otherwise load torch._dynamo, more than half of a cold search's start-up.
defer_pyg_dynamo()
