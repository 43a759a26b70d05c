r"""The HDF5 meta-database of features, tasks, architectures and accuracies."""
from d2a.db.database import (FORMAT, SCHEMA_VERSION, MetaDatabase, ResultRow, Results,
                             validate_file)
from d2a.db.merge import copy_into, merge
from d2a.db.build import build_database, dataset_features, load_source

__all__ = ['FORMAT', 'SCHEMA_VERSION', 'MetaDatabase', 'ResultRow', 'Results', 'validate_file',
           'copy_into', 'merge', 'build_database', 'dataset_features', 'load_source']
