"""Running on several processes: the torchrun set-up and process groups, and sharding work across ranks."""
