"""PathWorld, a family of 2-D manipulation and navigation tasks in pure JAX (see `world`)."""

from envs.pathworld.env import OBS_MODES, TASK_INFO, PathWorld, instruction, split
from envs.pathworld.world import NUM_OBJECTS, STATE_DIM, TASKS, WorldParams, unpack, world_params

__all__ = ["NUM_OBJECTS", "OBS_MODES", "STATE_DIM", "TASKS", "TASK_INFO", "PathWorld", "WorldParams", "instruction",
           "split", "unpack", "world_params"]  # fmt: skip
