"""Evaluation: breed classifier, generative metrics, memorisation check, reports."""
