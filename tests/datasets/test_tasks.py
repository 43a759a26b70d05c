import pytest

from d2a.datasets import Task, sample_tasks, whole_source_task

CLASSES = [f'c{i}' for i in range(10)]


@pytest.mark.parametrize('num_classes', [3, (2, 5)])
def test_sample_tasks(num_classes):
    tasks = sample_tasks('src', CLASSES, 6, num_classes, seed=1)
    assert tasks == sample_tasks('src', CLASSES, 6, num_classes, seed=1)
    assert tasks != sample_tasks('src', CLASSES, 6, num_classes, seed=2)
    lo, hi = (num_classes, num_classes) if isinstance(num_classes, int) else num_classes
    assert all(lo <= t.num_classes <= hi and t.source == 'src' for t in tasks)
    assert [t.name for t in tasks] == [f'src-{i:03d}' for i in range(6)]


def test_sample_tasks_errors():
    with pytest.raises(ValueError, match="source 'src' has 10 classes, fewer than the 11"):
        sample_tasks('src', CLASSES, 2, 11)
    with pytest.raises(ValueError, match='2 <= low <= high'):
        sample_tasks('src', CLASSES, 2, (5, 3))
    with pytest.raises(ValueError, match='split must be one of'):
        Task('t', 'src', ['a'], 'validation')
    with pytest.raises(ValueError, match='lists a class twice'):
        Task('t', 'src', ['a', 'a'])


def test_whole_source_task():
    t = whole_source_task('digits', CLASSES)
    assert t.name == 'digits' and t.split == 'meta-test' and t.classes == CLASSES
