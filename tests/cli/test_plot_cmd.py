import pytest

from d2a.cli.main import main

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module')
def run(tiny, tiny_db, tmp_path_factory):
    root = tmp_path_factory.mktemp('run')
    tiny.train_both(tiny_db, root / 'ckpt', epochs=2)
    return {'db': tiny_db, 'ckpt': root / 'ckpt'}


@pytest.mark.parametrize('argv', [
    ['curves', '--log', '{ckpt}/generator.metrics.jsonl'],
    ['curves', '--log', '{ckpt}/predictor.metrics.jsonl'],
    ['predictions', '--run', '{ckpt}'],
    ['embedding', '--checkpoint', '{ckpt}', '--db', '{db}'],
    ['embedding', '--checkpoint', '{ckpt}', '--db', '{db}', '--kind', 'generator',
     '--color', 'source'],
])
def test_plots_are_readable_pngs(run, tmp_path, argv):
    import matplotlib.image as mpimg
    argv = [a.replace('{ckpt}', str(run['ckpt'])).replace('{db}', str(run['db'])) for a in argv]
    out = tmp_path / 'plot.png'
    assert main(['plot'] + argv + ['--out', str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    img = mpimg.imread(str(out))
    assert img.shape[0] > 200 and img.shape[1] > 200 and img.std() > 0.01


def test_plot_errors(run, tmp_path, capsys):
    assert main(['plot', 'predictions', '--run', str(tmp_path), '--out',
                 str(tmp_path / 'p.png')]) == 1
    assert 'predictor.val.json does not exist' in capsys.readouterr().err
    assert main(['plot', 'curves', '--log', str(tmp_path / 'none.jsonl'), '--out',
                 str(tmp_path / 'p.png')]) == 1
    assert 'does not exist' in capsys.readouterr().err
    assert not (tmp_path / 'p.png').exists()
