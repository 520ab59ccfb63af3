"""App-tier autoscaling: the pure policy, worker heartbeats, the scaler loop, and its fleets."""
