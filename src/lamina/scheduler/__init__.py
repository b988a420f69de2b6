"""Placement and warm pools: per-version pools of environments, warm reuse, scale-out on
demand, idle reaping, retirement on update. Imports worker and model; never api or store."""
