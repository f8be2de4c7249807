"""The sound classes of the embedded corpus: General MIDI programs, pitch ranges and captions.

One source of truth for class names, label prompts (the fixed test-time queries) and the
caption phrasings that training mixtures are described with.
"""

from __future__ import annotations

from dataclasses import dataclass


def label_prompt(name: str) -> str:
    """The fixed label query of a class at test time (the paper queries with label text)."""
    return f"the sound of {name}"


@dataclass(frozen=True)
class SoundClass:
    """One class: a GM program (bank 128 = drum kit), how it is played, how people describe it."""

    name: str
    program: int
    style: str  # "melody", "chords", "effect" or "drums"
    pitch: tuple[int, int]  # MIDI note range played
    phrasings: tuple[str, ...]  # single-source captions, each one clause
    bank: int = 0
    density: tuple[float, float] | None = None  # notes per second; None = the style's default
    variants: tuple[int, ...] = ()  # other GM programs of the same instrument (corpus variation)

    @property
    def prompt(self) -> str:
        return label_prompt(self.name)

    @property
    def programs(self) -> tuple[int, ...]:
        """Every GM program that plays this class: ``program`` first, then the variants."""
        return (self.program, *self.variants)


CLASSES: tuple[SoundClass, ...] = (
    # instruments of the MUSIC data set that General MIDI has
    SoundClass(
        "accordion",
        21,
        "chords",
        (53, 79),
        (
            "an accordion plays",
            "someone squeezes an accordion",
            "accordion music is playing",
            "a folk tune is played on the accordion",
            "an accordion wheezes out a melody",
        ),
        variants=(23,),  # bandoneon
    ),
    SoundClass(
        "acoustic guitar",
        25,
        "chords",
        (40, 76),
        (
            "an acoustic guitar is strummed",
            "someone plays an acoustic guitar",
            "guitar strings are plucked",
            "a guitarist picks a tune",
            "an acoustic guitar plays softly",
        ),
        variants=(24,),  # nylon-string guitar
    ),
    SoundClass(
        "cello",
        42,
        "melody",
        (36, 64),
        (
            "a cello plays",
            "someone bows a cello",
            "a cello plays a low melody",
            "deep bowed cello strings resonate",
            "a cellist plays a slow line",
        ),
        variants=(43,),  # contrabass in the cello's register
    ),
    SoundClass(
        "clarinet",
        71,
        "melody",
        (52, 84),
        (
            "a clarinet plays",
            "someone plays the clarinet",
            "a clarinet melody is played",
            "woodwind notes come from a clarinet",
            "a clarinet toots a tune",
        ),
    ),
    SoundClass(
        "flute",
        73,
        "melody",
        (62, 94),
        (
            "a flute plays",
            "someone plays a flute",
            "a high flute melody is played",
            "a flutist plays a tune",
            "a flute sounds airy notes",
        ),
        variants=(72, 74, 75),  # piccolo, recorder, pan flute
    ),
    SoundClass(
        "saxophone",
        65,
        "melody",
        (50, 80),
        (
            "a saxophone plays",
            "someone plays the saxophone",
            "a saxophone plays a jazzy line",
            "a sax solo is played",
            "a saxophonist blows a melody",
        ),
        variants=(64, 66, 67),  # soprano, tenor, baritone sax
    ),
    SoundClass(
        "trumpet",
        56,
        "melody",
        (55, 84),
        (
            "a trumpet plays",
            "someone blows a trumpet",
            "a trumpet plays a brassy melody",
            "a trumpet fanfare is played",
            "a trumpeter plays loudly",
        ),
        variants=(59,),  # muted trumpet
    ),
    SoundClass(
        "tuba",
        58,
        "melody",
        (29, 55),
        (
            "a tuba plays",
            "someone plays the tuba",
            "a tuba blows low brass notes",
            "a tuba oom-pahs",
            "a deep tuba line is played",
        ),
    ),
    SoundClass(
        "violin",
        40,
        "melody",
        (55, 91),
        (
            "a violin plays",
            "someone bows a violin",
            "a string melody is played on a violin",
            "a fiddle is played",
            "a violinist plays a tune",
        ),
        variants=(41, 110),  # viola, fiddle
    ),
    SoundClass(
        "xylophone",
        13,
        "melody",
        (60, 96),
        (
            "a xylophone is played",
            "someone strikes a xylophone",
            "wooden bars of a xylophone ring",
            "a xylophone plays a melody",
            "mallets tap a xylophone",
        ),
        variants=(12,),  # marimba
    ),
    SoundClass(
        "bagpipe",
        109,
        "melody",
        (55, 79),
        (
            "bagpipes play",
            "someone plays the bagpipes",
            "a bagpipe drones",
            "a piper plays a tune",
            "a bagpipe melody is played",
        ),
    ),
    SoundClass(
        "piano",
        0,
        "chords",
        (36, 90),
        (
            "a piano plays",
            "someone plays the piano",
            "piano chords are played",
            "a pianist plays a melody",
            "keys of a piano are struck",
        ),
        variants=(1, 3),  # bright grand, honky-tonk
    ),
    SoundClass(
        "harp",
        46,
        "chords",
        (40, 91),
        (
            "a harp plays",
            "someone plucks a harp",
            "harp strings ring out",
            "a harpist plays arpeggios",
            "a harp plays a gentle melody",
        ),
    ),
    SoundClass(
        "church organ",
        19,
        "chords",
        (36, 84),
        (
            "a church organ plays",
            "someone plays a pipe organ",
            "organ chords fill a church",
            "an organist plays",
            "a pipe organ drones",
        ),
        variants=(20,),  # reed organ
    ),
    SoundClass(
        "choir",
        52,
        "chords",
        (48, 76),
        (
            "a choir sings",
            "people sing in a choir",
            "voices sing together",
            "a chorus sings aah",
            "singers hold a chord",
        ),
        variants=(53,),  # voice oohs
    ),
    SoundClass(
        "steel drums",
        114,
        "melody",
        (55, 84),
        (
            "steel drums are played",
            "someone plays a steel drum",
            "a steel pan melody rings out",
            "calypso notes ring on a steel drum",
            "a steel drum rings",
        ),
    ),
    SoundClass(
        "drum kit",
        0,
        "drums",
        (35, 59),
        (
            "drums are played",
            "someone plays a drum kit",
            "a drummer plays a beat",
            "a drummer hits the cymbals",
            "drums and cymbals are hit",
        ),
        bank=128,
        variants=(8, 16, 24, 25, 32, 40),  # room, power, electronic, TR-808, jazz, brush kits
    ),
    # non-musical sounds General MIDI offers
    SoundClass(
        "birds",
        123,
        "effect",
        (60, 84),
        (
            "birds chirp",
            "a bird tweets",
            "birds are singing",
            "birds are chirping",
            "a bird is whistling",
        ),
        density=(6.0, 12.0),
    ),
    SoundClass(
        "telephone",
        124,
        "effect",
        (60, 72),
        (
            "a telephone rings",
            "a phone is ringing",
            "a telephone bell rings",
            "the phone rings repeatedly",
            "a telephone keeps ringing",
        ),
        density=(3.0, 6.0),
    ),
    SoundClass(
        "helicopter",
        125,
        "effect",
        (48, 72),
        (
            "a helicopter flies",
            "a helicopter passes overhead",
            "helicopter blades whir",
            "a chopper hovers",
            "a helicopter whirs overhead",
        ),
    ),
    SoundClass(
        "applause",
        126,
        "effect",
        (55, 72),
        (
            "people applaud",
            "a crowd claps",
            "an audience gives applause",
            "a crowd claps and cheers",
            "an audience is clapping",
        ),
    ),
    SoundClass(
        "ocean waves",
        122,
        "effect",
        (48, 72),
        (
            "waves crash on the shore",
            "the sea surges",
            "ocean waves roll in",
            "surf breaks on a beach",
            "water splashes on the shore",
        ),
    ),
    SoundClass(
        "gunshots",
        127,
        "effect",
        (48, 72),
        (
            "a gun is fired",
            "gunshots ring out",
            "someone fires a gun",
            "shots are fired",
            "a rifle fires several times",
        ),
    ),
    SoundClass(
        "breathing",
        121,
        "effect",
        (55, 72),
        (
            "a person breathes heavily",
            "someone is breathing",
            "someone breathes heavily",
            "a person inhales and exhales",
            "breaths are taken",
        ),
    ),
)

CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
PROMPTS: tuple[str, ...] = tuple(c.prompt for c in CLASSES)
CLASS_BY_NAME: dict[str, SoundClass] = {c.name: c for c in CLASSES}
# named subsets a preset can render (``Preset.classes``); "music": the MUSIC data set's
# instruments that General MIDI has (MUSIC-11 without erhu, plus bagpipe from MUSIC-21)
CLASS_SETS: dict[str, tuple[str, ...]] = {"all": CLASS_NAMES, "music": CLASS_NAMES[:11]}
