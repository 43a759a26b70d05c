import numpy as np
import pytest

from d2a.datasets import DigitsSource
from d2a.datasets.digits import read_digits


def test_digits_file_reads_like_scikit_learn():
    datasets = pytest.importorskip('sklearn.datasets')
    bunch = datasets.load_digits()
    images, labels = read_digits()
    assert images.dtype == bunch.images.dtype and labels.dtype == bunch.target.dtype
    np.testing.assert_array_equal(images, bunch.images)
    np.testing.assert_array_equal(labels, bunch.target)


def test_digits_source_without_scikit_learn_import():
    import subprocess
    import sys
    code = ('import sys; from d2a.datasets import DigitsSource; s = DigitsSource().load(); '
            "print(s.images.shape, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == '(1797, 8, 8, 1) False'
    assert DigitsSource().load(12).images.shape == (1797, 12, 12, 1)
