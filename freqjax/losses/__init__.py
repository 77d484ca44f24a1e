"""The MICA losses: instance contrast (MoCo) and Feature Modulation."""
