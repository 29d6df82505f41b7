"""Training networks on the synthetic world under several objectives, cached by configuration.

``train_network(world_dir, objective=NAME, cache_dir=..., snapshots=..., progress=..., **options)``
trains (or loads) one network; :data:`OBJECTIVES` lists the objectives
and :data:`OBJECTIVE_DESCRIPTIONS` says what each predicts.
"""

from .cache import CacheCorruptError, config_key
from .data import InMemoryImages, load_image_folder
from .evaluate import evaluate_image_folder, predict, top1_accuracy
from .objectives import OBJECTIVE_DESCRIPTIONS, OBJECTIVES, Objective, get_objective, network_name
from .snapshots import Snapshot, log_spaced_steps, read_snapshots
from .train import (
    DEFAULT_OPTIONS,
    TASKS,
    TRAINING_VERSION,
    TrainedNetwork,
    scene_steps,
    train_network,
    train_objectives,
    train_reference_networks,
    training_config,
)

__all__ = [
    "CacheCorruptError",
    "DEFAULT_OPTIONS",
    "InMemoryImages",
    "OBJECTIVES",
    "OBJECTIVE_DESCRIPTIONS",
    "Objective",
    "Snapshot",
    "TASKS",
    "TRAINING_VERSION",
    "TrainedNetwork",
    "config_key",
    "evaluate_image_folder",
    "get_objective",
    "load_image_folder",
    "log_spaced_steps",
    "network_name",
    "predict",
    "read_snapshots",
    "scene_steps",
    "top1_accuracy",
    "train_network",
    "train_objectives",
    "train_reference_networks",
    "training_config",
]
