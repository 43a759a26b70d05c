import subprocess
import sys

import pytest

from d2a.utils.lock import FileLocked, file_lock, lock_path


def test_lock_is_reentrant_in_a_process_and_exclusive_across(tmp_path):
    target = tmp_path / 'db.h5'
    probe = ('import sys\nfrom d2a.utils.lock import FileLocked, file_lock\n'
             'try:\n    with file_lock(sys.argv[1]):\n        print("free")\n'
             'except FileLocked as e:\n    print(e)\n')

    def other_process() -> str:
        return subprocess.run([sys.executable, '-c', probe, str(target)], capture_output=True,
                              text=True, check=True).stdout.strip()
    with file_lock(target, 'a test'):
        with file_lock(target):  # the same process may nest
            assert 'pid' in lock_path(target).read_text()
        assert 'in use by another process' in other_process()  # still held after the inner
    assert other_process() == 'free'
    assert lock_path(target) == tmp_path / '.db.h5.lock' and not target.exists()
    with pytest.raises(ZeroDivisionError):
        with file_lock(target):
            1 / 0
    assert other_process() == 'free'  # released on error too
    assert issubclass(FileLocked, RuntimeError)
