import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from d2a.cli.main import main
from d2a.datasets import NpzSource
from d2a.db import MetaDatabase
from d2a.graphs import get_space
from d2a.pipeline.build import build_database
from d2a.pipeline.label import (TaskImages, label, sample_architectures, shard_from_env,
                                shard_path)
from d2a.pipeline.merge import merge
from d2a.nets import Recipe

RECIPE = Recipe(name='tiny', C=2, N=1, epochs=1, batch_size=16)
RECIPE_FLAGS = ['--recipe', 'custom', '--recipe-name', 'tiny', '--channels', '2', '--cells', '1',
                '--epochs', '1', '--batch-size', '16']


def _db(tmp_path, num_tasks=3):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 12)
    # class-dependent brightness, so that the tasks are learnable
    images = (rng.integers(0, 80, size=(48, 8, 8)) + 40 * labels[:, None, None]).astype(np.uint8)
    np.savez(tmp_path / 'src.npz', images=images, labels=labels)
    path = tmp_path / 'db.h5'
    build_database(path, [NpzSource(str(tmp_path / 'src.npz'))], 'raw_pixels',
                   {'in_channels': 1, 'size': 2}, image_size=8, num_tasks=num_tasks,
                   classes_per_task=(2, 3))
    return path


def _rows(path):
    with MetaDatabase.open(path) as db:
        return sorted((r.task, r.arch, r.accuracy, r.recipe, r.seed, r.epochs)
                      for r in db.results().rows())


@pytest.mark.parametrize('sampler', ['uniform', 'stratified'])
def test_sample_architectures(sampler):
    space = get_space('nb201')
    a = sample_architectures(space, 't0', 5, 0, sampler)
    assert a == sample_architectures(space, 't0', 5, 0, sampler)
    assert a != sample_architectures(space, 't1', 5, 0, sampler)
    assert len({space.canonical_key(x) for x in a}) == 5
    with pytest.raises(ValueError, match='sampler must be one of'):
        sample_architectures(space, 't0', 5, 0, 'greedy')


def test_stratified_spans_sizes():
    from d2a.nets import count_params
    space = get_space('nb201')
    strat = sample_architectures(space, 't', 6, 0, 'stratified')
    sizes = sorted(count_params(a, 8, 1, 3, 10) for a in strat)
    assert len(set(sizes)) >= 4 and sizes[-1] > 2 * sizes[0]


def test_task_images_split(tmp_path):
    path = _db(tmp_path)
    with MetaDatabase.open(path) as db:
        task = db.tasks()[0]
        tr_x, tr_y, te_x, te_y = TaskImages(db, 0.25).split(task)
        again = TaskImages(db, 0.25).split(task)
        assert all(torch.equal(a, b) for a, b in zip((tr_x, tr_y, te_x, te_y), again))
        k = task.num_classes
        assert tr_x.shape == (9 * k, 1, 8, 8) and te_x.shape == (3 * k, 1, 8, 8)
        assert sorted(set(te_y.tolist())) == list(range(k))
        with pytest.raises(ValueError, match="task 'src-000': class '[0-9]' has 1 images, too few"):
            TaskImages(db, 0.25, max_images_per_class=1).split(db.task('src-000'))


def test_shards_cover_the_work_once(tmp_path, monkeypatch):
    path = _db(tmp_path, num_tasks=3)
    outs = [label(path, 'nb201', None, 1, RECIPE, shard=(i, 2)) for i in range(2)]
    assert outs == [shard_path(path, (i, 2)) for i in range(2)]
    with MetaDatabase.open(outs[0]) as a, MetaDatabase.open(outs[1]) as b:
        assert (a.num_results, b.num_results) == (2, 1)
    whole = tmp_path / 'whole'
    whole.mkdir()
    shutil.copy(path, whole / 'db.h5')
    merge(whole / 'db.h5', [label(whole / 'db.h5', 'nb201', None, 1, RECIPE)])
    merge(path, outs)
    assert len(_rows(path)) == 3 and _rows(path) == _rows(whole / 'db.h5')
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '3')
    assert shard_from_env() == (1, 3)
    monkeypatch.setenv('RANK', '3')
    with pytest.raises(ValueError, match='shard must be i/N'):
        shard_from_env()


def test_log_interval_prints_plain_progress_lines(tmp_path, capsys):
    path = _db(tmp_path, num_tasks=2)
    label(path, 'nb201', None, 1, RECIPE, log_interval=0.0)
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(' (')[0] for line in lines] == ['label 0/1: 0/2 cells',
                                                       'label 0/1: 1/2 cells']
    assert lines[0].endswith('ETA unknown')
    assert ' cells/min, ' in lines[1] and ' elapsed, ETA ' in lines[1]


def test_a_second_label_of_one_shard_is_refused(tmp_path, capsys):
    path = _db(tmp_path, num_tasks=1)
    shard = shard_path(path, (0, 1))
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\nfrom d2a.utils.lock import file_lock\n'
         f'with file_lock({str(shard)!r}):\n    print("held", flush=True)\n    time.sleep(60)'],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        args = ['db', 'label', str(path), '--archs-per-task', '1'] + RECIPE_FLAGS
        assert main(args) == 1
        err = capsys.readouterr().err
        assert f'{shard} is in use by another process (pid {holder.pid}, since' in err
        assert not shard.exists()  # nothing was done
    finally:
        holder.kill()
        holder.wait()
    assert main(args) == 0  # the lock went with its holder
    with MetaDatabase.open(path) as db:
        assert db.num_results == 1


def test_label_rejects_a_recipe_of_another_space(tmp_path):
    path = _db(tmp_path, num_tasks=1)
    with pytest.raises(ValueError, match="trains nb201 networks but the architectures are of "
                                         "space 'mbv3'"):
        label(path, 'mbv3', None, 1, RECIPE)
    with pytest.raises(ValueError, match="stratified"):
        label(path, 'mbv3', None, 1, Recipe.mbv3_mini(), sampler='stratified')
    assert main(['db', 'label', str(path), '--space', 'mbv3', '--recipe', 'mini']) == 1
    assert main(['db', 'label', str(path), '--space', 'mbv3', '--channels', '4']) == 1


def test_label_trains_mobilenetv3_configs(tmp_path):
    import dataclasses
    path = _db(tmp_path, num_tasks=1)
    recipe = dataclasses.replace(Recipe.mbv3_mini(), name='mbv3-tiny', epochs=1,
                                 width_mult=0.1, image_size=8)
    label(path, 'mbv3', None, 2, recipe)
    merge(path, [shard_path(path, (0, 1))])
    with MetaDatabase.open(path) as db:
        r = db.results()
        space = get_space('mbv3')
        assert len(r.accuracy) == 2 and set(r.space) == {'mbv3'}
        assert all(space.from_data(space.to_data(str(a))) == str(a) for a in r.arch)
        assert np.all((r.accuracy >= 0) & (r.accuracy <= 100))
        assert next(iter(db.recipes().values()))['recipe']['space'] == 'mbv3'


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    path = _db(tmp_path, num_tasks=4)
    ref = tmp_path / 'ref'
    ref.mkdir()
    shutil.copy(path, ref / 'db.h5')
    args = ['db', 'label', str(path), '--archs-per-task', '3', '--seed', '1'] + RECIPE_FLAGS
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable, '-m', 'd2a.cli.main'] + args, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shard = shard_path(path, (0, 1))
    done = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if shard.exists():
            with MetaDatabase.open(shard) as db:
                done = db.num_results
            if done >= 2:
                break
        time.sleep(0.02)
    assert proc.poll() is None, 'labelling finished before it could be killed'
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with MetaDatabase.open(shard) as db:  # readable right after the kill
        assert 2 <= db.num_results < 12
    with MetaDatabase.open(path) as db:
        assert db.num_results == 0

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(args) == 0  # the same command continues
        assert main(['db', 'label', str(ref / 'db.h5'), '--archs-per-task', '3', '--seed', '1']
                    + RECIPE_FLAGS) == 0
    finally:
        torch.set_num_threads(threads)
    assert not shard.exists()
    resumed, reference = _rows(path), _rows(ref / 'db.h5')
    assert len(resumed) == 12 and len({r[:2] for r in resumed}) == 12
    assert resumed == reference
    assert main(args) == 0  # nothing left to do, nothing duplicated
    assert _rows(path) == reference


def test_db_label_width_mult_sizes_mbv3_networks_only(tmp_path, capsys):
    path = _db(tmp_path, num_tasks=1)
    assert main(['db', 'label', str(path), '--space', 'mbv3', '--archs-per-task', '1',
                 '--width-mult', '0.1', '--epochs', '1', '--train-image-size', '8']) == 0
    with MetaDatabase.open(path) as db:
        (fields,) = db.recipes().values()
    assert fields['recipe']['width_mult'] == 0.1 and fields['recipe']['space'] == 'mbv3'
    assert main(['db', 'label', str(path), '--width-mult', '0.5']) == 1
    assert '--width-mult sizes MobileNetV3 networks' in capsys.readouterr().err
    assert main(['db', 'label', str(path), '--space', 'mbv3', '--width-mult', '0']) == 1


def test_external_mbv3_accuracies_enter_through_the_python_api(tmp_path):
    # docs/mbv3.md: supernet accuracies measured elsewhere, written as results
    import random

    from d2a.db import ResultRow
    from d2a.graphs.mbv3 import config_to_arch, sample_config
    from d2a.training.episodes import MetaTrainData
    path = _db(tmp_path, num_tasks=2)
    with MetaDatabase.open(path) as db:
        tasks = [t.name for t in db.tasks('meta-train')]
    rng = random.Random(0)
    evaluated = [(t, sample_config(rng), 60.0 + i, 1.5) for i, t in enumerate(tasks * 3)]
    with MetaDatabase.open(path, 'a') as db:
        db.add_recipe('ofa-supernet', {'recipe': {'name': 'ofa-supernet'}, 'data': {}})
        db.add_results([ResultRow(task, config_to_arch(cfg), top1, 'ofa-supernet', 0, 0,
                                  seconds, 'mbv3') for task, cfg, top1, seconds in evaluated])
    with MetaDatabase.open(path) as db:
        r = db.results(recipe='ofa-supernet', space='mbv3')
        assert len(r.task) == 6
        data = MetaTrainData(db, space='mbv3', recipe='ofa-supernet', num_sample=4)
        assert len(data.tasks) == 2
