"""Evaluation: how good is a checkpoint, measured every way we trust.

run.py           `evaluate(EvalSettings(...))`: the pipeline behind `tinycats evaluate`
samples.py       the real and generated image sets, as uint8 at the generator's resolution
metrics.py       FID / KID / IS / precision-recall through torch-fidelity; the Fréchet distance
classifier.py    the breed classifier: breed accuracy and the feature space of FD-classifier
memorization.py  nearest-neighbour distances of generated samples to the training set
report.py        evaluation_report.json / .md, the baseline comparison, the loss plot
"""
