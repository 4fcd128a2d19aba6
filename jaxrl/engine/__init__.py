"""The training engine: phases, regimes, the trainer and its host loop, run directories, checkpoints, sharding."""
