import io

from d2a.utils.progress import ProgressLog, format_duration, progress_line


def test_progress_line_counts_rate_and_eta():
    assert progress_line('x', 3, 12, 90.0, 'cells') == \
        'x: 3/12 cells (25 %), 2.00 cells/min, 1m30s elapsed, ETA 4m30s'
    assert progress_line('x', 0, 5, 0.0, 'cells').endswith('ETA unknown')
    assert format_duration(7500) == '2h05m' and format_duration(59.6) == '1m00s'


def test_progress_log_prints_at_most_every_interval():
    out = io.StringIO()
    log = ProgressLog('build', 10, 'images', interval=3600.0, file=out)
    log.update(0)  # the first call prints
    log.update(5)  # too soon
    log.update(10, force=True)
    assert [line.split(' (')[0] for line in out.getvalue().splitlines()] == \
        ['build: 0/10 images', 'build: 10/10 images']
    silent = io.StringIO()
    ProgressLog('x', 1, 'cells', interval=None, file=silent).update(1, force=True)
    assert silent.getvalue() == ''
