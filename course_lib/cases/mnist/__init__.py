"""Hinton et al.'s MNIST experiment (chapters 05–06): the cached networks and the distilled students."""
