"""The class map shared by training, sampling, evaluation, ONNX metadata and the web demo.

Indices 0-11 are the cat breeds of the Oxford-IIIT Pet dataset in alphabetical order, 12 is
"Other". The null label used for classifier-free guidance is one past the last class, so a model
trained on another ImageFolder (with its own class list) gets its own null index: nothing in the
project hard-codes 13.
"""

from tinycats.errors import UsageError

CAT_BREEDS: tuple[str, ...] = (
    "Abyssinian",
    "Bengal",
    "Birman",
    "Bombay",
    "British_Shorthair",
    "Egyptian_Mau",
    "Maine_Coon",
    "Persian",
    "Ragdoll",
    "Russian_Blue",
    "Siamese",
    "Sphynx",
)
OTHER = "Other"
CLASS_NAMES: tuple[str, ...] = (*CAT_BREEDS, OTHER)


def null_index(class_names: tuple[str, ...] | list[str]) -> int:
    """The label of the unconditional branch: one past the last real class."""
    return len(class_names)


def class_index(name: str, class_names: tuple[str, ...] | list[str] = CLASS_NAMES) -> int:
    """Look up a class by name, case- and separator-insensitively ("british shorthair" works)."""
    wanted = _fold(name)
    for i, candidate in enumerate(class_names):
        if _fold(candidate) == wanted:
            return i
    raise UsageError(f"unknown breed {name!r}; choose one of: {', '.join(class_names)}")


def _fold(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")
