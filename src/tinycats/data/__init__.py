"""Data: toy cats (synth), Oxford-IIIT Pet (oxford), any ImageFolder (folder), augmentation,
checks (validate) and the record's `CatsDataset`."""


def __getattr__(name: str):
    # `from tinycats.data import CatsDataset` without importing torch for every user of tinycats.data.
    if name == "CatsDataset":
        from tinycats.data.dataset import CatsDataset

        return CatsDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CatsDataset"]
