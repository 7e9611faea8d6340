"""The toy-cat classes as data: one row of traits per class, read by the shared painter in
synth.py. Colours are RGB in [0, 1]; lengths in head units (head radius ~1); angles in degrees."""

from __future__ import annotations

from dataclasses import dataclass

from tinycats.data.synth_draw import RGB

WHITE: RGB = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Breed:
    """One class's identity. Lengths are in head units (head radius ~1), angles in degrees."""

    coats: tuple[tuple[RGB, RGB], ...]  # (main, second) pairs; second = chin, chest, muzzle, patches
    pattern: str = ""  # key of PATTERNS, "" for a solid coat
    pattern_colour: RGB | None = None  # None: use the coat's second colour
    points: RGB | None = None  # colour-point mask and ears
    point_size: float = 0.0
    blaze: float = 0.0  # probability of a white inverted-V blaze down the face
    chin: bool = True  # second colour on chin
    pads: bool = True  # second colour on the whisker pads
    gloss: float = 0.0
    eye: RGB = (0.6, 0.7, 0.2)
    eye_size: float = 0.2
    eye_round: float = 0.5  # 0 almond ... 1 round
    eye_tilt: float = 8.0
    eye_gap: float = 0.38
    slit: bool = True  # vertical slit pupils (cats) or round ones (dogs)
    ear_height: float = 0.6
    ear_width: float = 0.38
    ear_spread: float = 34.0
    tufts: bool = False  # lynx tips
    floppy: bool = False  # hanging dog ears instead of upright triangles
    head_w: float = 1.0
    head_h: float = 0.95
    cheeks: float = 0.0
    wedge: float = 0.1
    fur: float = 0.03  # outline tuft length
    ruff: float = 0.0  # mane/ruff size, 0 for none
    nose: RGB = (0.8, 0.5, 0.5)
    nose_size: float = 0.11
    nose_y: float = 0.36
    snout: float = 0.0  # dog muzzle length
    whiskers: bool = True


BREEDS: dict[str, Breed] = {
    "Abyssinian": Breed(
        coats=(((0.74, 0.42, 0.2), (0.93, 0.78, 0.58)),),
        pattern="ticked",
        pattern_colour=(0.3, 0.15, 0.07),
        eye=(0.6, 0.72, 0.22),
        eye_round=0.25,
        eye_tilt=12,
        ear_height=0.9,
        ear_width=0.44,
        ear_spread=30,
        wedge=0.25,
        nose=(0.72, 0.35, 0.3),
    ),
    "Bengal": Breed(
        coats=(((0.9, 0.62, 0.24), (0.98, 0.9, 0.72)),),
        pattern="rosettes",
        pattern_colour=(0.18, 0.09, 0.04),
        eye=(0.5, 0.74, 0.24),
        eye_round=0.5,
        ear_height=0.6,
        wedge=0.15,
        nose=(0.78, 0.45, 0.38),
    ),
    "Birman": Breed(
        coats=(((0.93, 0.85, 0.66), WHITE),),
        points=(0.3, 0.19, 0.12),
        point_size=0.62,
        pads=False,
        eye=(0.18, 0.38, 0.92),
        eye_round=0.75,
        ear_height=0.55,
        head_w=1.05,
        fur=0.1,
        ruff=1.15,
        nose=(0.35, 0.22, 0.18),
    ),
    "Bombay": Breed(
        coats=(((0.07, 0.06, 0.065), (0.1, 0.09, 0.09)),),
        gloss=0.4,
        eye=(0.95, 0.55, 0.08),
        eye_size=0.23,
        eye_round=1.0,
        eye_tilt=0,
        ear_height=0.55,
        head_w=1.05,
        head_h=1.0,
        wedge=0.0,
        fur=0.02,
        nose=(0.12, 0.1, 0.1),
    ),
    "British_Shorthair": Breed(
        coats=(((0.42, 0.47, 0.55), (0.5, 0.55, 0.62)),),
        eye=(0.96, 0.6, 0.14),
        eye_size=0.21,
        eye_round=1.0,
        eye_tilt=0,
        eye_gap=0.42,
        ear_height=0.34,
        ear_width=0.32,
        ear_spread=44,
        head_w=1.2,
        head_h=0.95,
        cheeks=0.18,
        wedge=0.0,
        nose=(0.32, 0.35, 0.42),
    ),
    "Egyptian_Mau": Breed(
        coats=(((0.8, 0.8, 0.78), (0.93, 0.92, 0.9)),),
        pattern="spots",
        pattern_colour=(0.14, 0.14, 0.14),
        eye=(0.42, 0.86, 0.28),
        eye_size=0.22,
        eye_round=0.55,
        ear_height=0.7,
        ear_width=0.4,
        nose=(0.72, 0.45, 0.45),
    ),
    "Maine_Coon": Breed(
        coats=(((0.55, 0.37, 0.2), (0.88, 0.78, 0.6)),),
        pattern="mackerel",
        pattern_colour=(0.16, 0.1, 0.06),
        eye=(0.76, 0.8, 0.22),
        eye_round=0.6,
        ear_height=0.75,
        ear_width=0.42,
        tufts=True,
        head_w=1.05,
        head_h=1.05,
        fur=0.12,
        ruff=1.3,
        nose=(0.55, 0.3, 0.25),
    ),
    "Persian": Breed(
        coats=(((0.97, 0.96, 0.93), WHITE), ((0.96, 0.88, 0.72), (0.99, 0.95, 0.86))),
        eye=(0.92, 0.5, 0.08),
        eye_size=0.25,
        eye_round=1.0,
        eye_tilt=0,
        eye_gap=0.44,
        ear_height=0.28,
        ear_width=0.3,
        ear_spread=48,
        head_w=1.2,
        head_h=1.05,
        cheeks=0.1,
        wedge=0.0,
        fur=0.12,
        ruff=1.4,
        nose=(0.88, 0.55, 0.55),
        nose_size=0.06,
        nose_y=0.2,
    ),
    "Ragdoll": Breed(
        coats=(((0.95, 0.92, 0.85), WHITE),),
        points=(0.36, 0.26, 0.2),
        point_size=0.75,
        blaze=1.0,
        eye=(0.35, 0.58, 0.96),
        eye_size=0.21,
        eye_round=0.85,
        ear_height=0.55,
        ear_width=0.4,
        head_w=1.08,
        fur=0.11,
        ruff=1.2,
        nose=(0.9, 0.6, 0.6),
    ),
    "Russian_Blue": Breed(
        coats=(((0.6, 0.65, 0.72), (0.62, 0.67, 0.74)),),
        pattern="ticked",
        pattern_colour=(0.86, 0.89, 0.93),
        eye=(0.2, 0.9, 0.35),
        eye_round=0.45,
        eye_tilt=10,
        ear_height=0.78,
        ear_width=0.42,
        head_w=0.95,
        wedge=0.3,
        nose=(0.38, 0.42, 0.5),
    ),
    "Siamese": Breed(
        coats=(((0.94, 0.89, 0.78), (0.94, 0.89, 0.78)),),
        points=(0.17, 0.1, 0.07),
        point_size=0.95,
        chin=False,
        pads=False,
        eye=(0.1, 0.3, 0.92),
        eye_round=0.1,
        eye_tilt=18,
        ear_height=0.95,
        ear_width=0.5,
        ear_spread=40,
        head_w=0.88,
        head_h=1.05,
        wedge=0.45,
        fur=0.02,
        nose=(0.14, 0.09, 0.07),
    ),
    "Sphynx": Breed(
        coats=(((0.93, 0.72, 0.62), (0.95, 0.76, 0.67)),),
        pattern="wrinkles",
        pattern_colour=(0.72, 0.47, 0.42),
        eye=(0.56, 0.76, 0.38),
        eye_size=0.22,
        eye_round=0.35,
        eye_tilt=22,
        ear_height=1.1,
        ear_width=0.58,
        ear_spread=40,
        head_w=0.92,
        cheeks=0.06,
        wedge=0.3,
        fur=0.0,
        whiskers=False,
        nose=(0.86, 0.55, 0.5),
    ),
    "Other": Breed(
        coats=(
            ((0.45, 0.27, 0.13), (0.82, 0.64, 0.42)),
            ((0.84, 0.6, 0.3), (0.97, 0.88, 0.68)),
            ((0.08, 0.07, 0.07), (0.95, 0.94, 0.92)),
            ((0.95, 0.93, 0.88), (0.5, 0.3, 0.15)),
        ),
        pattern="patches",
        blaze=0.4,
        eye=(0.3, 0.17, 0.07),
        eye_size=0.15,
        eye_round=1.0,
        eye_tilt=0,
        eye_gap=0.36,
        slit=False,
        ear_height=0.75,
        ear_width=0.3,
        floppy=True,
        head_w=0.92,
        head_h=1.0,
        wedge=0.05,
        fur=0.02,
        nose=(0.05, 0.05, 0.05),
        nose_size=0.22,
        nose_y=0.66,
        snout=1.0,
        whiskers=False,
    ),
}
