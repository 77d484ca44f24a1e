"""Checkpoints: Orbax train states and imported PyTorch ST-GCN weights."""
