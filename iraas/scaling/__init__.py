"""App-tier autoscaling: the pure policy, its settings, worker heartbeats, the published fleet size,
the scaler loop, and its fleets (EC2, local processes). Knows nothing of the image service but
the names of the queue and bucket it reads."""
