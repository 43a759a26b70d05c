import numpy as np
import pytest

from d2a.plot import (pca_2d, plot_embedding, plot_predictions, plot_search_quality,
                      plot_training_curves)
from d2a.training.log import MetricsLog, read_metrics_log

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def assert_png(path, min_width=300):
    import matplotlib.image as mpimg
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = mpimg.imread(str(path))
    assert img.ndim == 3 and img.shape[1] >= min_width
    assert img.std() > 0.01  # not a blank canvas
    assert [p.name for p in path.parent.iterdir() if p.name.startswith('.')] == []


def test_training_curves(tmp_path):
    log = MetricsLog(tmp_path / 'm.jsonl')
    for epoch in range(1, 5):
        log.write({'epoch': epoch, 'train_loss': 1.0 / epoch, 'val_loss': 1.2 / epoch,
                   'val_spearman': 0.2 * epoch, 'val_pearson': float('nan'), 'lr': 1e-4,
                   'time': 0.1})
    records = read_metrics_log(tmp_path / 'm.jsonl')
    assert records[0]['val_pearson'] is None  # NaN written as null: standard JSON
    out = plot_training_curves(tmp_path / 'm.jsonl', tmp_path / 'curves.png')
    assert_png(out)


def test_metrics_log_truncates_on_resume(tmp_path):
    log = MetricsLog(tmp_path / 'm.jsonl')
    for epoch in range(1, 4):
        log.write({'epoch': epoch})
    MetricsLog(tmp_path / 'm.jsonl', truncate_after=2).write({'epoch': 3, 'again': True})
    assert [r['epoch'] for r in read_metrics_log(tmp_path / 'm.jsonl')] == [1, 2, 3]
    (tmp_path / 'bad.jsonl').write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(ValueError, match='line 2'):
        read_metrics_log(tmp_path / 'bad.jsonl')


def test_predictions_and_embedding(tmp_path):
    rng = np.random.default_rng(0)
    true = rng.uniform(10, 90, 40)
    out = plot_predictions(true, true + rng.normal(0, 5, 40), tmp_path / 'pred.png',
                           groups=['t1', 't2'] * 20)
    assert_png(out)
    vectors = rng.normal(size=(12, 6))
    out = plot_embedding(vectors, ['train'] * 8 + ['val'] * 4, tmp_path / 'emb.png',
                         names=[f't{i}' for i in range(12)])
    assert_png(out)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match='must end in .png'):
        plot_predictions([1, 2], [1, 2], tmp_path / 'p.jpg')
    with pytest.raises(ValueError, match='as many predictions'):
        plot_predictions([1, 2], [1], tmp_path / 'p.png')
    with pytest.raises(ValueError, match='a label per vector'):
        plot_embedding(np.zeros((3, 2)), ['a'], tmp_path / 'e.png')
    (tmp_path / 'empty.jsonl').write_text('')
    with pytest.raises(ValueError, match='no epoch records'):
        plot_training_curves(tmp_path / 'empty.jsonl', tmp_path / 'c.png')
    assert not any(p.suffix == '.png' for p in tmp_path.iterdir())


def test_pca_recovers_main_axis():
    t = np.linspace(-1, 1, 20)
    x = np.stack([t, 2 * t, np.zeros_like(t)], 1)
    points, ratio = pca_2d(x)
    assert ratio[0] == pytest.approx(1.0)
    assert abs(np.corrcoef(points[:, 0], t)[0, 1]) == pytest.approx(1.0)


def test_plot_search_quality(tmp_path):
    rows = [{'task': t, 'method': m, 'seed': s, 'percentile': p}
            for t in ('a', 'b') for m, p in (('d2a', 97.0), ('random', 50.0)) for s in (0, 1)]
    out = plot_search_quality(rows, tmp_path / 'q.png')
    assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="no 'percentile'"):
        plot_search_quality([{'task': 'a', 'method': 'd2a'}], tmp_path / 'bad.png')
    with pytest.raises(ValueError, match='at least one'):
        plot_search_quality(rows, tmp_path / 'none.png', methods=['naswot'])
