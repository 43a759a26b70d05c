r"""The HDF5 meta-database of features, tasks, architectures and accuracies: storage and
its row types only (what writes rows lives in :mod:`d2a.pipeline`)."""
from d2a.db.database import (FORMAT, SCHEMA_VERSION, MetaDatabase, ResultRow, Results,
                             check_file, validate_file)

__all__ = ['FORMAT', 'SCHEMA_VERSION', 'MetaDatabase', 'ResultRow', 'Results', 'check_file',
           'validate_file']
