"""The training engine: what the CLI and any script use (config, data, models, losses, the step and the loop,
checkpoints, devices, runs). It never imports from the course aids or the evaluation."""
