"""Training the reference networks (SceneNet, ObjectNet) on the synthetic world, cached by configuration."""

from .cache import CacheCorruptError, config_key
from .data import InMemoryImages, load_image_folder
from .evaluate import evaluate_image_folder, predict, top1_accuracy
from .train import (
    DEFAULT_OPTIONS,
    TASKS,
    TRAINING_VERSION,
    TrainedNetwork,
    train_network,
    train_reference_networks,
    training_config,
)

__all__ = [
    "CacheCorruptError",
    "DEFAULT_OPTIONS",
    "InMemoryImages",
    "TASKS",
    "TRAINING_VERSION",
    "TrainedNetwork",
    "config_key",
    "evaluate_image_folder",
    "load_image_folder",
    "predict",
    "top1_accuracy",
    "train_network",
    "train_reference_networks",
    "training_config",
]
