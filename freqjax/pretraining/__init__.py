"""MICA pretraining: the networks and train state, the per-device step, the loop."""
