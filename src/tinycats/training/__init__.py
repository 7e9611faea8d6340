"""Training: the loop (loop), its micro-batches (batches), the optimiser and schedule (optim),
torchrun / DDP plumbing (distributed), logs (log) and starting a run from presets and flags
(launch), which the CLI and the Modal app share."""
