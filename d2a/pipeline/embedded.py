r"""The embedded default: d2a's own mini meta-database and checkpoints, built end to end.

``d2a embedded`` (or ``scripts/build_embedded.sh``) runs the whole build in a work folder,
one resumable stage after the other (``docs/embedded.md``):

1. ``extractor`` -- render the sources and pre-train the small CNN on the **meta-training
   sources only**;
2. ``database`` -- features of every source, meta-training tasks (class subsets of the
   meta-training sources) and held-out meta-test tasks (from sources never seen in
   meta-training); the split is written into the database's root attribute ``source_split``;
3. ``label`` -- real training of architectures of the scale's space (NB201 cells, or
   MobileNetV3 configs for ``--scale mbv3``) with the scale's recipe, dealt to ``jobs``
   processes: random ones and a fixed set of *anchors* (the same on every meta-training
   task, for the best-on-average transfer baseline) on meta-training tasks, one common set
   (the anchors and random ones) with several seeds on held-out tasks;
4. ``merge`` -- the label shards into the database;
5. ``train`` -- the predictor and the generator, each by a ``d2a train`` child process (in
   parallel when ``jobs >= 2``);
6. ``install`` -- the database, ``generator.pt``, ``predictor.pt`` and ``extractor.pt`` into
   the package (``d2a/data/``, ``d2a/checkpoints/``; MobileNetV3's checkpoints in
   ``d2a/checkpoints/mbv3/``), or another folder.

Every stage records its wall time and CPU time (this process and its children) in
``<workdir>/state.json``; a rerun skips finished stages, and an interrupted stage continues
where it stopped: labelling shards are rewritten after every cell (see
:mod:`d2a.pipeline.label`), leftover shards are merged before new work is dealt, and
training resumes from its last epoch. The build runs the meta-training through the ``d2a
train`` command and never imports :mod:`d2a.training` itself.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from d2a.config import save_config
from d2a.nets.recipe import Recipe
from d2a.utils.atomic import atomic_path, atomic_write
from d2a.utils.paths import (CHECKPOINT_FILES, DB_NAME, DEFAULT_DATABASE, PACKAGE_DIR,
                             checkpoint_path, checkpoint_subdir, database_name)

__all__ = ['Build', 'Scale', 'SCALES', 'STAGES', 'CellSubset', 'anchor_cells', 'read_split',
           'format_cpu_table', 'DEFAULT_DATABASE', 'DB_NAME', 'CHECKPOINT_FILES']

STAGES = ('extractor', 'database', 'label', 'merge', 'train', 'install')
#: The models the train stage makes (:data:`d2a.checkpoint.KINDS`), in the order their
#: workers start: the first one writes to this process's output.
TRAIN_ORDER = ('predictor', 'generator')
#: Root attribute of the database holding the source split (JSON).
SPLIT_ATTR = 'source_split'


@dataclass(frozen=True)
class SourcePlan:
    r"""A source of the build and the tasks drawn from it.

    Args:
        spec (str): the source, as :func:`d2a.datasets.parse_source` reads it (with its
            own image count, size and rendering difficulty: the task's regime).
        tasks (int): class subsets drawn from it; ``0`` makes one task of the whole source.
        classes (tuple): inclusive range of classes of a drawn task.
    """
    spec: str
    tasks: int = 0
    classes: Tuple[int, int] = (2, 2)


@dataclass(frozen=True)
class Scale:
    r"""The sizes of one build of the embedded database.

    Args:
        name (str): ``'full'`` (the shipped NB201 build), ``'mbv3'`` (the shipped
            MobileNetV3 build) or ``'tiny'`` / ``'tiny-mbv3'`` (tests of the pipeline).
        image_size (int): side of the images of the database, of the features and of
            training.
        meta_train (tuple of SourcePlan): the meta-training sources and their tasks.
        held_out (tuple of SourcePlan): the held-out sources (never used for meta-training
            or for the extractor) and their meta-test tasks.
        archs_per_task (int): random cells labelled per meta-training task (seed 0).
        anchors (int): cells labelled on every task, meta-training and held-out, with
            every seed of ``anchor_seeds`` (the transfer baseline and the noise ceiling).
        anchor_seeds (tuple of int): training seeds of the anchors.
        held_out_archs (int): cells labelled on every held-out task -- one common set: the
            anchors plus random cells --, with every seed of ``held_out_seeds``.
        held_out_seeds (tuple of int): training seeds of the held-out cells.
        recipe (Recipe): how every cell is trained.
        test_fraction (float): held-out images of each class for the cell's test accuracy.
        max_images_per_class (int, optional): cap of a class's images when labelling.
        extractor_channels (int): feature size of the small CNN.
        extractor_in_channels (int): its image channels (grey images are repeated).
        pretrain_epochs (int): its pre-training epochs.
        train (dict): options of ``d2a train`` (:class:`~d2a.training.config.TrainConfig`)
            shared by the predictor and the generator; its ``'predictor'`` and ``'generator'`` entries
            (dicts) override them per model. Changing them retrains without relabelling.
        model_args (dict): ``{'predictor': {...}, 'generator': {...}}`` model size overrides
            (default: MetaD2A's sizes).
        seed (int): seed of tasks, samples and training.
        space (str): the search space of the labelled architectures (``'nb201'`` or
            ``'mbv3'``; the recipe must train that space's networks).
        shipped (bool): the build may install into the package (the ``space``'s database
            ``d2a/data/mini_<space>.h5`` and checkpoint folder).
    """
    name: str
    image_size: int
    meta_train: Tuple[SourcePlan, ...]
    held_out: Tuple[SourcePlan, ...]
    archs_per_task: int
    anchors: int
    held_out_archs: int
    recipe: Recipe
    anchor_seeds: Tuple[int, ...] = (0,)
    held_out_seeds: Tuple[int, ...] = (0,)
    test_fraction: float = 0.25
    max_images_per_class: Optional[int] = None
    extractor_channels: int = 64
    extractor_in_channels: int = 3
    pretrain_epochs: int = 10
    train: Dict[str, Any] = field(default_factory=dict)
    model_args: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    space: str = 'nb201'
    shipped: bool = False

    def to_dict(self) -> Dict[str, Any]:
        out = dataclasses.asdict(self)
        out['recipe'] = self.recipe.to_dict()
        return json.loads(json.dumps(out))  # tuples -> lists, as read back from JSON

    def train_options(self, kind: str) -> Dict[str, Any]:
        r"""The ``d2a train`` options of ``kind``: the shared entries of :attr:`train`
        updated by its ``'predictor'`` or ``'generator'`` entry."""
        out = {k: v for k, v in self.train.items() if k not in TRAIN_ORDER}
        out.update(self.train.get(kind, {}))
        return out

    def sources(self) -> Tuple[List[Any], List[Any]]:
        r"""``(meta_train, held_out)`` :class:`~d2a.datasets.ImageSource` lists."""
        from d2a.datasets import parse_source
        return ([parse_source(p.spec) for p in self.meta_train],
                [parse_source(p.spec) for p in self.held_out])


# Scale fields that only affect the train stage.
_TRAIN_KEYS = ('train', 'model_args')


def _glyphs(script: str, tasks: int, classes: Tuple[int, int] = (6, 12), **options: Any
            ) -> SourcePlan:
    extra = ''.join(f',{k}={v}' for k, v in options.items())
    return SourcePlan(f'glyphs:{script},images_per_class=70,image_size=12{extra}', tasks,
                      classes)


def _photos(photos: str, name: str, tasks: int, classes: Tuple[int, int], **options: Any
            ) -> SourcePlan:
    extra = ''.join(f',{k}={v}' for k, v in options.items())
    return SourcePlan(f'photos:{photos},images_per_class=70,image_size=12,name={name}{extra}',
                      tasks, classes)


def _patterns(family: str, tasks: int, classes: Tuple[int, int], **options: Any) -> SourcePlan:
    extra = ''.join(f',{k}={v}' for k, v in options.items())
    return SourcePlan(f'patterns:{family},images_per_class=70,image_size=12{extra}', tasks,
                      classes)


def _noisy_glyphs(tasks: int, classes: Tuple[int, int]) -> Tuple[SourcePlan, ...]:
    # Two scripts rendered with pixel noise and random rotation.
    return tuple(_glyphs(script, tasks, classes, noise=0.15, rotation=20.0, seed=1,
                         name=f'glyphs_{script}_noisy')
                 for script in ('latin_lower', 'cyrillic_upper'))


def _photo_views(tasks: int, classes: Tuple[int, int]) -> Tuple[SourcePlan, ...]:
    # The first photograph set in colour and grey, as close-ups and as wider views.
    views = (('close', {'scale_min': 0.04, 'scale_max': 0.12}),
             ('wide', {'scale_min': 0.2, 'scale_max': 0.5}))
    return tuple(_photos(f'{colour}_a', f'photos_{colour}_{view}', tasks, classes,
                         **({'grayscale': True} if colour == 'grey' else {}), **scale)
                 for colour in ('colour', 'grey') for view, scale in views)


def _pattern_families(tasks: int, orientation_classes: Tuple[int, int],
                      classes: Tuple[int, int]) -> Tuple[SourcePlan, ...]:
    # Procedural images whose classes differ in one statistic.
    return (_patterns('orientation', tasks, orientation_classes, noise=0.4),
            _patterns('frequency', tasks, classes, noise=0.2),
            _patterns('spectrum', tasks, classes), _patterns('dots', tasks, classes))


# Meta-training of the shipped builds. Sized for about 15-20 minutes of one core each (they train
# side by side). Whole source datasets are held out for validation, as a new dataset is at
# search time. The predictor: a population prior plus a dataset-conditioned residual, trained
# on within-task targets with a listwise loss over 8 architectures of a task per group --
# chosen over MetaD2A's concatenation head on MSE by validation within-task Spearman on the
# NB201 build (docs/embedded.md).
_SHIPPED_TRAIN: Dict[str, Any] = {
    'batch_size': 32, 'lr': 1e-3, 'top_k': 5, 'val_fraction': 0.2, 'val_by': 'source',
    'predictor': {'epochs': 40, 'lr_patience': 6, 'rank_weight': 1.0, 'group_size': 8},
    'generator': {'epochs': 300, 'lr_patience': 30}}
_SHIPPED_MODEL_ARGS: Dict[str, Dict[str, Any]] = {
    'predictor': {'head': 'residual', 'target': 'task', 'descriptors': True}}

# Meta-training of the tiny test builds: a few steps of tiny models.
_TINY_TRAIN: Dict[str, Any] = {
    'epochs': 1, 'batch_size': 4, 'max_steps': 2, 'top_k': 2, 'val_fraction': 0.25,
    'val_samples': 2, 'val_resamples': 1, 'num_sample': 3}
_TINY_MODEL_ARGS: Dict[str, Dict[str, Any]] = {
    'predictor': {'hidden_channels': 8, 'graph_hidden_channels': 8, 'out_channels': 8,
                  'mlp_channels': 8, 'num_heads': 2},
    'generator': {'hidden_channels': 8, 'latent_channels': 8, 'num_heads': 2}}

SCALES: Dict[str, Scale] = {
    'full': Scale(
        name='full', image_size=12,
        # Regimes differ by source: characters (clean and noisy), photographs (close-ups and
        # wider views, colour and grey) and procedural images whose classes differ in one
        # statistic (orientation, frequency, roughness, dot density).
        meta_train=(
            _glyphs('latin_upper', 2), _glyphs('latin_lower', 2), _glyphs('greek_upper', 2),
            _glyphs('greek_lower', 2), _glyphs('cyrillic_upper', 2),
            _glyphs('cyrillic_lower', 2), _glyphs('armenian_upper', 2),
            _glyphs('armenian_lower', 2), _glyphs('math', 2),
            *_noisy_glyphs(2, (6, 12)), *_photo_views(3, (5, 8)),
            *_pattern_families(2, (5, 8), (4, 6)),
        ),
        held_out=(
            SourcePlan('digits'),
            _glyphs('hebrew', 1, (10, 12)), _glyphs('georgian', 1, (10, 12)),
            _glyphs('digits', 0), _glyphs('arrows', 0),
            _photos('colour_b+grey_b', 'photos_b', 0, (2, 2), scale_min=0.05, scale_max=0.3),
            _patterns('shapes', 0, (2, 2)),
        ),
        # About 3,200 trainings: 36 random cells per meta-training task, 16 anchors on every
        # meta-training task, 50 common cells x 3 seeds on every held-out task.
        archs_per_task=36, anchors=16, anchor_seeds=(0,), held_out_archs=50,
        held_out_seeds=(0, 1, 2), recipe=Recipe.mini(), test_fraction=0.4,
        max_images_per_class=100, extractor_channels=64, pretrain_epochs=15,
        train=_SHIPPED_TRAIN, model_args=_SHIPPED_MODEL_ARGS,
        shipped=True),
    # MobileNetV3 configs cost some seven times an NB201 cell to train (docs/mbv3.md): fewer,
    # smaller tasks of the same kinds of sources, and the held-out sources of the NB201 build.
    'mbv3': Scale(
        name='mbv3', space='mbv3', image_size=12,
        meta_train=(
            _glyphs('latin_upper', 2, (4, 7)), _glyphs('latin_lower', 2, (4, 7)),
            _glyphs('greek_upper', 2, (4, 7)), _glyphs('greek_lower', 2, (4, 7)),
            _glyphs('cyrillic_upper', 2, (4, 7)), _glyphs('cyrillic_lower', 1, (4, 7)),
            _glyphs('armenian_upper', 1, (4, 7)), _glyphs('armenian_lower', 1, (4, 7)),
            _glyphs('math', 1, (4, 7)),
            *_noisy_glyphs(1, (4, 7)), *_photo_views(1, (4, 6)),
            *_pattern_families(1, (4, 6), (4, 6)),
        ),
        held_out=(
            SourcePlan('digits'),
            _glyphs('hebrew', 1, (6, 8)), _glyphs('georgian', 1, (6, 8)),
            _glyphs('arrows', 1, (6, 8)),
            _photos('colour_b+grey_b', 'photos_b', 0, (2, 2), scale_min=0.05, scale_max=0.3),
        ),
        # About 1,060 trainings: 28 random configs and 8 anchors on each of 24 meta-training
        # tasks; 20 common configs (the anchors and 12 random) x 2 seeds on 5 held-out tasks.
        archs_per_task=28, anchors=8, anchor_seeds=(0,), held_out_archs=20,
        held_out_seeds=(0, 1), recipe=Recipe.mbv3_mini(), test_fraction=0.4,
        max_images_per_class=60, extractor_channels=64, pretrain_epochs=15,
        train=_SHIPPED_TRAIN, model_args=_SHIPPED_MODEL_ARGS,
        shipped=True),
    'tiny': Scale(
        name='tiny', image_size=8,
        meta_train=(SourcePlan('glyphs:greek_lower,images_per_class=8,image_size=8', 2, (3, 4)),
                    SourcePlan('patterns:hue,images_per_class=8,image_size=8', 2, (3, 4))),
        held_out=(SourcePlan('digits'),
                  SourcePlan('glyphs:arrows,max_classes=4,images_per_class=8,image_size=8')),
        archs_per_task=3, anchors=2, anchor_seeds=(0, 1), held_out_archs=4,
        held_out_seeds=(0, 1), recipe=Recipe(name='tiny', C=2, N=1, epochs=1, batch_size=16),
        max_images_per_class=8, extractor_channels=8, pretrain_epochs=1,
        train=_TINY_TRAIN, model_args=_TINY_MODEL_ARGS),
    'tiny-mbv3': Scale(
        name='tiny-mbv3', space='mbv3', image_size=8,
        meta_train=(SourcePlan('glyphs:greek_lower,images_per_class=8,image_size=8', 2, (3, 4)),
                    SourcePlan('patterns:hue,images_per_class=8,image_size=8', 1, (3, 4))),
        held_out=(SourcePlan('glyphs:arrows,max_classes=3,images_per_class=8,image_size=8'),),
        archs_per_task=2, anchors=2, anchor_seeds=(0,), held_out_archs=3,
        held_out_seeds=(0, 1),
        recipe=Recipe(name='tiny-mbv3', space='mbv3', width_mult=0.1, epochs=1, batch_size=16,
                      image_size=8),
        max_images_per_class=8, extractor_channels=8, pretrain_epochs=1,
        train=_TINY_TRAIN, model_args=_TINY_MODEL_ARGS),
}


# ----------------------------------------------------------------------------- helpers
def _cpu_seconds() -> float:
    r"""CPU seconds (user + system) of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class CellSubset:
    r"""A search space (NB201 by default) restricted to a fixed list of architectures:
    labelling with it trains exactly these on every task (the anchors of the transfer
    baseline)."""

    def __init__(self, archs: Sequence[str], space: str = 'nb201') -> None:
        from d2a.graphs import get_space
        self.base = get_space(space)
        self.archs = list(archs)
        if len({self.base.canonical_key(a) for a in self.archs}) != len(self.archs):
            raise ValueError('anchor cells must differ up to isomorphism')
        self.name = self.base.name

    def canonical_key(self, arch: str) -> str:
        return self.base.canonical_key(arch)

    def sample(self, num: int, rng: Optional[random.Random] = None) -> List[str]:
        rng = rng or random.Random()
        return [rng.choice(self.archs) for _ in range(num)]

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({len(self.archs)} cells)'


def anchor_cells(scale: Scale) -> List[str]:
    r"""The architectures labelled on every task: NB201 cells stratified by parameter count,
    so that small and large cells are all represented; MobileNetV3 configs drawn
    uniformly."""
    from d2a.graphs import get_space
    from d2a.pipeline.label import sample_architectures
    if scale.space != 'nb201':
        return sample_architectures(get_space(scale.space), 'anchors', scale.anchors,
                                    scale.seed)
    proxy = {'C': scale.recipe.C, 'N': scale.recipe.N, 'in_channels': 3, 'num_classes': 10}
    return sample_architectures(get_space('nb201'), 'anchors', scale.anchors, scale.seed,
                                'stratified', proxy)


def held_out_cells(scale: Scale) -> List[str]:
    r"""The one set of cells labelled on every held-out task: the anchors, then distinct
    random cells up to ``held_out_archs`` (a common set, so that rankings of different
    held-out tasks can be compared cell by cell)."""
    from d2a.graphs import get_space
    from d2a.pipeline.label import sample_architectures
    space = get_space(scale.space)
    cells = anchor_cells(scale)[:scale.held_out_archs]
    keys = {space.canonical_key(a) for a in cells}
    for arch in sample_architectures(space, 'held-out', scale.held_out_archs + scale.anchors,
                                     scale.seed):
        if len(cells) >= scale.held_out_archs:
            break
        if space.canonical_key(arch) not in keys:
            keys.add(space.canonical_key(arch))
            cells.append(arch)
    return cells


def read_split(db: Any) -> Dict[str, Any]:
    r"""The source split written into a database by the build (``{}`` if none)."""
    text = db.attrs.get(SPLIT_ATTR)
    return json.loads(text) if text else {}


# ----------------------------------------------------------------------------- the build
class Build:
    r"""One build of the embedded database in ``workdir`` (see the module docstring).

    Args:
        workdir (str or Path): the folder holding the state, the database, the shards, the
            logs and the training runs.
        scale (str): a key of :data:`SCALES`; a folder keeps the scale it was started with.
        jobs (int): processes for labelling (and training).
        device (str, optional): torch device of labelling and training (default: CUDA when
            available, else CPU).
        install_dir (str or Path, optional): where ``install`` copies to: ``data/`` and
            ``checkpoints/`` (for MobileNetV3, ``checkpoints/mbv3/``) below it (default: the
            package, refused for scales that are not shipped).
        install (bool): run the ``install`` stage.
        progress (bool): progress bars.
    """

    def __init__(self, workdir: Union[str, Path], scale: str = 'full', jobs: int = 2,
                 device: Optional[str] = None,
                 install_dir: Optional[Union[str, Path]] = None, install: bool = True,
                 progress: bool = False) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
        if jobs < 1:
            raise ValueError(f'jobs must be >= 1, got {jobs}')
        self.workdir = Path(workdir)
        self.scale = SCALES[scale]
        self.jobs = int(jobs)
        self.device = device
        self.install = install
        self.install_dir = Path(install_dir) if install_dir is not None else PACKAGE_DIR
        if install and self.install_dir.resolve() == PACKAGE_DIR and not self.scale.shipped:
            shipped = ', '.join(repr(k) for k, v in SCALES.items() if v.shipped)
            raise ValueError(f'only the shipped scales ({shipped}) may be installed into the '
                             f'package ({PACKAGE_DIR}); pass another install_dir for {scale!r}')
        self.progress = progress
        self.db_path = self.workdir / database_name(self.scale.space)
        self.run_dir = self.workdir / 'run'
        self.state_path = self.workdir / 'state.json'

    # -------------------------------------------------------------------- state
    def load_state(self) -> Dict[str, Any]:
        if not self.state_path.exists():
            return {'scale': self.scale.to_dict(), 'stages': {}}
        try:
            state = json.loads(self.state_path.read_text())
        except ValueError as e:
            raise ValueError(f'{self.state_path}: not a JSON build state ({e})') from None
        # Training settings may change between runs (training is cheap next to labelling):
        # only the data settings must match; a finished training with other settings reruns.
        saved, now = dict(state.get('scale') or {}), self.scale.to_dict()
        saved_train = {k: saved.pop(k, None) for k in _TRAIN_KEYS}
        now_train = {k: now.pop(k) for k in _TRAIN_KEYS}
        if saved != now:
            raise ValueError(f"{self.state_path}: the folder holds a build of scale "
                             f"{saved.get('name')!r} with other data settings; use "
                             f'another --workdir for scale {self.scale.name!r}')
        if saved_train != now_train:
            state['scale'] = self.scale.to_dict()
            for stage in ('train', 'install'):
                state['stages'].pop(stage, None)
            if self.run_dir.exists():
                shutil.rmtree(self.run_dir)
            self.save_state(state)
        return state

    def save_state(self, state: Dict[str, Any]) -> None:
        with atomic_write(self.state_path) as f:
            f.write(json.dumps(state, indent=1) + '\n')

    # -------------------------------------------------------------------- stages
    def run(self, stages: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        r"""Runs the stages not finished yet (``stages`` limits them); returns the state."""
        unknown = sorted(set(stages or ()) - set(STAGES))
        if unknown:
            raise ValueError(f"unknown stage {unknown[0]!r} (stages: {', '.join(STAGES)})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        state = self.load_state()
        todo = [s for s in STAGES if (stages is None or s in stages)
                and (s != 'install' or self.install)]
        for stage in todo:
            info = state['stages'].setdefault(stage, {'done': False, 'cpu_s': 0.0, 'wall_s': 0.0})
            if info['done'] and stage != 'install':
                continue
            print(f'[embedded] {stage} ...', flush=True)
            cpu, wall = _cpu_seconds(), time.perf_counter()
            try:
                getattr(self, f'stage_{stage}')()
            finally:
                info['cpu_s'] += _cpu_seconds() - cpu
                info['wall_s'] += time.perf_counter() - wall
                self.save_state(state)
            info['done'] = True
            self.save_state(state)
        print(format_cpu_table(state), flush=True)
        return state

    def _render(self) -> Tuple[List[Any], List[Any]]:
        from d2a.pipeline.build import load_source
        train, held = self.scale.sources()
        return ([load_source(s, self.scale.image_size) for s in train],
                [load_source(s, self.scale.image_size) for s in held])

    def stage_extractor(self) -> None:
        from d2a.pipeline.build import make_extractor
        from d2a.features import save_extractor
        train, _ = self._render()
        ex = make_extractor('small_cnn', train,
                            {'in_channels': self.scale.extractor_in_channels,
                             'out_channels': self.scale.extractor_channels},
                            pretrain_epochs=self.scale.pretrain_epochs, seed=self.scale.seed,
                            device=self.device, progress=self.progress)
        save_extractor(ex, self.workdir / 'extractor.pt')

    def stage_database(self) -> None:
        from d2a.datasets.tasks import sample_tasks, whole_source_task
        from d2a.db import MetaDatabase
        from d2a.pipeline.build import add_source_features
        from d2a.features import extractor_to_bytes, load_extractor_file
        s = self.scale
        ex = load_extractor_file(self.workdir / 'extractor.pt')
        train, held = self._render()
        tasks = []
        for plans, sources, split_name in ((s.meta_train, train, 'meta-train'),
                                           (s.held_out, held, 'meta-test')):
            for plan, src in zip(plans, sources):
                if plan.tasks == 0:
                    tasks.append(whole_source_task(src.name, src.images.classes, split_name))
                else:
                    tasks += sample_tasks(src.name, src.images.classes, plan.tasks,
                                          tuple(plan.classes), s.seed, split=split_name)
        split = {'meta-train': [x.name for x in train], 'meta-test': [x.name for x in held],
                 'extractor_trained_on': [x.name for x in train], 'scale': s.name,
                 'recipe': self.label_recipe()[0], 'anchors': anchor_cells(s),
                 'anchor_seeds': list(s.anchor_seeds), 'held_out_cells': held_out_cells(s),
                 'held_out_seeds': list(s.held_out_seeds)}
        with MetaDatabase.create(self.db_path, ex.name, ex.out_channels, ex.config(),
                                 s.image_size, overwrite=True) as db:
            db.set_feature_extractor(ex.name, ex.out_channels, ex.config(),
                                     extractor_to_bytes(ex))
            for src in train + held:
                add_source_features(db, src, ex, device=self.device, progress=self.progress)
            db.add_tasks(tasks)
            db.h5.attrs[SPLIT_ATTR] = json.dumps(split)

    def label_recipe(self) -> Tuple[str, Dict[str, Any]]:
        from d2a.pipeline.label import label_recipe
        return label_recipe(self.scale.recipe, self.scale.test_fraction,
                            self.scale.max_images_per_class)

    def label_jobs(self) -> List[Dict[str, Any]]:
        r"""The labelling calls every shard makes, in order (meta-training first)."""
        s = self.scale
        return [{'space': s.space, 'split': 'meta-train', 'archs_per_task': s.archs_per_task,
                 'seeds': [s.seed]},
                {'space': 'anchors', 'split': 'meta-train', 'archs_per_task': s.anchors,
                 'seeds': list(s.anchor_seeds)},
                {'space': 'held-out', 'split': 'meta-test', 'archs_per_task': s.held_out_archs,
                 'seeds': list(s.held_out_seeds)}]

    def label_shard(self, shard: Tuple[int, int]) -> None:
        r"""Labels shard ``shard = (i, N)`` of every labelling call (a worker's job)."""
        from d2a.pipeline.label import label, shard_path
        for job in self.label_jobs():
            space = {'anchors': lambda: CellSubset(anchor_cells(self.scale), self.scale.space),
                     'held-out': lambda: CellSubset(held_out_cells(self.scale),
                                                    self.scale.space)
                     }.get(job['space'], lambda: job['space'])()
            label(self.db_path, space, None, job['archs_per_task'], self.scale.recipe,
                  seed=self.scale.seed, shard=shard, device=self.device,
                  out=shard_path(self.db_path, shard), test_fraction=self.scale.test_fraction,
                  max_images_per_class=self.scale.max_images_per_class, split=job['split'],
                  progress=self.progress, log_interval=None if self.progress else 120.0,
                  train_seeds=job['seeds'])

    def merge_shards(self) -> int:
        r"""Merges every label shard file next to the database into it and deletes them;
        returns the number of new results."""
        from d2a.pipeline.merge import merge
        shards = sorted(self.workdir.glob(f'{self.db_path.stem}.label-*of*.h5'))
        if not shards:
            return 0
        added = merge(self.db_path, shards)['results']
        for p in shards:
            p.unlink()
        return added

    def worker_command(self, worker: str) -> List[str]:
        r"""The command line of a worker: ``d2a embedded --worker label:I/N`` for a labelling
        shard, ``d2a train KIND --config FILE`` (resuming an interrupted run) for a model."""
        kind, what = self._parse_worker(worker)
        cmd = [sys.executable, '-m', 'd2a.cli.main']
        if kind == 'train':
            config = self.workdir / f'train-{what}.yaml'
            save_config(self.train_config(what), config)
            resume = checkpoint_path(self.run_dir, what, last=True).exists()
            return cmd + ['train', what, '--config', str(config),
                          '--resume' if resume else '--overwrite']
        return cmd + ['embedded', '--workdir', str(self.workdir), '--scale', self.scale.name,
                      '--no-install', '--worker', worker] + \
            (['--device', self.device] if self.device else [])

    def _parse_worker(self, worker: str) -> Tuple[str, str]:
        kind, _, what = worker.partition(':')
        if kind == 'label':
            try:
                i, n = (int(v) for v in what.split('/'))
            except ValueError:
                raise ValueError(f"worker {worker!r}: expected 'label:I/N'") from None
            return kind, what
        if kind == 'train' and what in TRAIN_ORDER:
            return kind, what
        raise ValueError(f"unknown worker {worker!r} (label:I/N or train:predictor|generator)")

    def _spawn(self, worker: str, to_log: bool = True,
               one_thread: bool = True) -> subprocess.Popen:
        r"""Starts a worker as a child process, its output in its log file (or this
        process's output), with one torch thread unless ``one_thread`` is false."""
        env = dict(os.environ)
        if one_thread:
            env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
        env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
        cmd = self.worker_command(worker)
        if not to_log:
            return subprocess.Popen(cmd, env=env)
        out = open(self._log(worker), 'a')
        try:
            return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        finally:
            out.close()

    def _log(self, worker: str) -> Path:
        (self.workdir / 'logs').mkdir(exist_ok=True)
        return self.workdir / 'logs' / (worker.replace(':', '-').replace('/', 'of') + '.log')

    def run_worker(self, worker: str) -> None:
        r"""Does one worker's job: ``'label:I/N'`` (a labelling shard, in this process) or
        ``'train:KIND'`` (a ``d2a train`` child process, waited for)."""
        kind, what = self._parse_worker(worker)
        if kind == 'label':
            i, n = (int(v) for v in what.split('/'))
            self.label_shard((i, n))
        else:
            self._wait([(self._spawn(worker, to_log=False, one_thread=False), worker)])

    def _parallel(self, workers: Sequence[str]) -> None:
        r"""Runs the workers at the same time: the first one in this process (one thread)
        when it labels, else as a child process writing to this process's output; the others
        as child processes writing to their logs."""
        import torch
        first = workers[0] if workers else None
        inline = first if first is not None and first.startswith('label:') else None
        procs = [(self._spawn(w, to_log=w != first), w) for w in workers if w != inline]
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            if inline is not None:
                self.run_worker(inline)
        except BaseException:
            _stop(procs)
            raise
        finally:
            torch.set_num_threads(threads)
        self._wait(procs)

    def _wait(self, procs: Sequence[Tuple[subprocess.Popen, str]]) -> None:
        try:
            failed = [w for p, w in procs if p.wait() != 0]
        except BaseException:
            _stop(procs)
            raise
        if failed:
            raise RuntimeError('worker(s) failed: ' + ', '.join(
                f'{w} (see {self._log(w)})' if self._log(w).exists() else w for w in failed))

    def stage_label(self) -> None:
        # Shards of an interrupted run (possibly with another number of jobs) first.
        self.merge_shards()
        self._parallel([f'label:{i}/{self.jobs}' for i in range(self.jobs)])

    def stage_merge(self) -> None:
        self.merge_shards()
        from d2a.db import MetaDatabase
        with MetaDatabase.open(self.db_path) as db:
            info = db.info()
        print(f"[embedded] {info['num_results']:,} results, "
              f"{info['num_tasks']['meta-train']} meta-train and "
              f"{info['num_tasks']['meta-test']} meta-test tasks", flush=True)

    def train_config(self, kind: str) -> Dict[str, Any]:
        r"""The options of ``d2a train KIND`` for the build's database and run folder."""
        return {'db': str(self.db_path.resolve()), 'out': str(self.run_dir.resolve()),
                'recipe': self.label_recipe()[0], 'space': self.scale.space,
                'device': self.device or 'auto',
                'progress': self.progress, 'seed': self.scale.seed,
                'model_args': dict(self.scale.model_args.get(kind, {})),
                **self.scale.train_options(kind)}

    def stage_train(self) -> None:
        workers = [f'train:{kind}' for kind in TRAIN_ORDER]
        if self.jobs >= 2:
            self._parallel(workers)
        else:
            for w in workers:
                self.run_worker(w)

    def stage_install(self) -> None:
        copies = [(self.db_path, self.install_dir / 'data' / self.db_path.name)]
        ckpt_dir = self.install_dir / 'checkpoints' / checkpoint_subdir(self.scale.space)
        copies += [(self.run_dir / f, ckpt_dir / f) for f in CHECKPOINT_FILES]
        for src, _ in copies:
            if not src.is_file():
                raise FileNotFoundError(f'{src} is missing: the build has not finished')
        total = 0
        for src, dst in copies:
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
            total += dst.stat().st_size
            print(f'[embedded] installed {dst} ({dst.stat().st_size / 2 ** 20:.2f} MiB)')
        print(f'[embedded] installed {total / 2 ** 20:.2f} MiB in all', flush=True)


def format_cpu_table(state: Dict[str, Any]) -> str:
    r"""The per-stage CPU hours and wall time of a build state."""
    lines = [f"{'stage':<10} {'CPU h':>8} {'wall h':>8}  done"]
    cpu = wall = 0.0
    for stage in STAGES:
        info = state['stages'].get(stage)
        if info is None:
            continue
        cpu += info['cpu_s']
        wall += info['wall_s']
        lines.append(f"{stage:<10} {info['cpu_s'] / 3600:>8.3f} {info['wall_s'] / 3600:>8.3f}  "
                     f"{'yes' if info['done'] else 'no'}")
    lines.append(f"{'total':<10} {cpu / 3600:>8.3f} {wall / 3600:>8.3f}")
    return '\n'.join(lines)


def _stop(procs: Sequence[Tuple[subprocess.Popen, str]]) -> None:
    # Interrupted: stop the workers this process started.
    for p, _ in procs:
        p.terminate()
    for p, _ in procs:
        p.wait()
