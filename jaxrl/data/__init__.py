"""Offline datasets: the on-device `Dataset` and its file formats (D4RL-layout HDF5/NPZ, Minari directories)."""

from jaxrl.data.d4rl import d4rl_env, d4rl_scores
from jaxrl.data.dataset import Dataset, Normalizer, sample_batch
from jaxrl.data.io import load_dataset, save_dataset
from jaxrl.data.validate import DatasetError, DatasetWarning

__all__ = [
    "d4rl_env",
    "d4rl_scores",
    "Dataset",
    "Normalizer",
    "sample_batch",
    "DatasetError",
    "DatasetWarning",
    "load_dataset",
    "save_dataset",
]
