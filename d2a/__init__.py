"""d2a: rapid neural architecture search by generating architecture graphs from datasets."""

__version__ = '0.1.0'

__all__ = ['__version__']
