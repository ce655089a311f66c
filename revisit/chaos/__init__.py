"""The fault run (`make chaos`): the simulated practice under injected faults, then a checker."""
