"""Caption -> one clause per sound source, and fixed K slots with alpha weights.

The parser is rule based, as in the paper, made robust on real AudioCaps phrasing:

1. *Strong* connectives always separate sources ("followed by", "while", "as", "with",
   "then", "before", "after", "as well as", ";", a sentence end ...), except a "with"/"over"
   phrase that describes the source before: "speaking over an intercom", "with a southern
   drawl", "sawing with a hand saw".
2. *Weak* joins ("and", commas) separate sources only when the right-hand side starts a new
   subject and the left-hand side is a full clause on its own: "a man speaks and a dog barks"
   is two sources; "a man speaks and laughs" or "a baby cries and babbles" (a second verb,
   known or not, without its own subject), "adults and children speak" (shared predicate),
   "a loud, long burp" (adjectives) and "hissing and scraping noise" (sound events of one
   action) are one. A bare list splits where voice meets non-voice ("female speech and
   sizzling") or people meet things ("some knocks and a man speaking"), or where a sound event
   meets a noun doing something ("hissing and wind blowing"). A verb keeps its object or
   complement ("revving then running idle", "clanking and tapping it"), a passive its second
   participle ("tapped and rasped"), and "near and far", "further and further" stay one.
3. Pieces that refer back (a pronoun, "one of them", "the engine" or "more beeps" already
   mentioned, a bare or compound subject repeated) merge into the source they describe; "it
   rains" is weather, not a pronoun; "silence" is not a source; repeats are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from wsas.errors import CaptionError

STRONG = (
    "is accompanied by",
    "accompanied by",
    "after which",
    "during which",
    "thereafter",
    "followed briefly by",
    "followed by",
    "as well as",
    "along with",
    "together with",
    "in addition to",
    "and then",
    "while",
    "whilst",
    "then",
    "before",
    "after",
    "as",
    "with",
    "over",
    "amid",
    "alongside",
    "against a background of",
    ";",
)
FILLERS = re.compile(
    r"^(?:(?:in a quiet environment|simultaneously|meanwhile|at first|at the same time|first|"
    r"there (?:is|are)|you can hear|we hear|one can hear|(?:also )?hear|sounds? of|the sound of)"
    r"\b[ ,]*)+"
)
TRAILING = re.compile(
    r"\b(?:in (?:the )?background|in the distance|in the foreground|at the same time|all at once|"
    r"at the end|in the end)\b"
)
PRONOUNS = {"it", "he", "she", "they", "him", "her", "them", "its", "this", "that", "which", "who"}
DETERMINERS = {
    "a",
    "an",
    "the",
    "some",
    "several",
    "multiple",
    "many",
    "few",
    "another",
    "other",
    "two",
    "three",
    "one",
    "more",
    "various",
    "numerous",
    "first",
    "second",
}
HUMANS = {
    "man",
    "woman",
    "person",
    "male",
    "female",
    "boy",
    "girl",
    "child",
    "kid",
    "speaker",
    "narrator",
    "people",
    "men",
    "women",
    "lady",
    "guy",
    "someone",
}
PREPOSITIONS = {
    "to",
    "at",
    "in",
    "on",
    "by",
    "into",
    "with",
    "for",
    "up",
    "down",
    "away",
    "along",
    "around",
    "over",
    "off",
    "out",
    "through",
    "from",
    "and",
    "then",
    "again",
    "once",
    "repeatedly",
    "continuously",
}
SAME_SOURCE_CONNECTIVES = {
    "while",
    "whilst",
    "then",
    "and then",
    "before",
    "after",
    "as",
    "after which",
}
MODIFIERS = {
    "loud",
    "soft",
    "softly",
    "faint",
    "light",
    "heavy",
    "rapid",
    "rhythmic",
    "intermittent",
    "mechanical",
    "electronic",
    "digital",
    "high",
    "low",
    "distant",
    "brief",
    "continuous",
    "continuos",
    "constant",
    "repetitive",
    "steady",
    "quiet",
    "muffled",
    "creaky",
    "small",
    "large",
    "big",
    "deep",
    "sharp",
    "gentle",
    "short",
    "long",
    "consistent",
    "periodic",
    "random",
    "metal",
    "metallic",
    "wooden",
    "static",
    "shrill",
    "increasingly",
    "loudly",
    "quietly",
    "very",
    "running",
    "flowing",
    "humming",
    "buzzing",
    "whistling",
    "plopping",
    "rattling",
    "hissing",
    "chirping",
    "compressed",
    "pitched",
    "higher",
    "lower",
    "electric",
}
AUX = {
    "is",
    "are",
    "was",
    "were",
    "be",
    "being",
    "been",
    "has",
    "have",
    "had",
    "gets",
    "get",
    "can",
    "continues",
    "continue",
    "occurs",
    "occur",
}
NOT_SOURCES = {
    "silence",
    "brief silence",
    "a brief silence",
    "a moment of silence",
    "quiet",
    "pause",
    "a pause",
}
VERB_STEMS = """
    speak talk bark chirp blow run idle pass laugh cry ring honk crash flow pour splash fall buzz
    hum whir whirr roar rev accelerate decelerate meow quack croak tick ticktock beep click knock
    tap bang explode fire play sing sound occur whistle yell shout cheer clap applaud hiss rustle
    rattle squeak squeal creak drip trickle gurgle vibrate rumble thump oink bleat moo neigh coo
    flap fly drive move start stop continue approach toot snore sneeze cough breathe sniff chew type
    crinkle crunch scrape rub sand spray flush drill saw hammer bark yelp growl howl purr hiss chug
    clank clang clatter jingle jangle screech scream shriek giggle snort grunt wail whine whimper
    groan moan murmur mumble whisper chatter narrate say give deliver operate work idle revs roar
    splash gush drone echo squawk caw tweet warble crow cluck gobble buzz sizzle crackle pop burst
    boom blast thunder pour spray swish whoosh swoosh zoom pass speed race skid squeal brake slam
    shut close open slide drop hit strike beat pound tap dribble bounce roll grind sand drill saw
    cut chop crunch munch slurp gulp swallow burp hiccup snore breathe pant gasp wheeze sigh hum
    sing chant pray preach lecture announce communicate converse call shout cheer clap stomp walk
    step march jog blow gust rustle sway creak bleat baa low whinny snort trot gallop clop hoot honk
    beep inhale exhale squeeze bow pluck strum pick strike fill hold roll break surge hover wheeze
    oom-pah ring come resonate smash tinkle chime jingle
    """.split()
IRREGULAR = {
    "ran",
    "flew",
    "blew",
    "rang",
    "fell",
    "sang",
    "spoke",
    "spoken",
    "gave",
    "given",
    "said",
    "made",
    "makes",
    "making",
    "make",
    "takes",
    "taking",
    "took",
    "goes",
    "going",
    "went",
    "comes",
    "coming",
    "came",
    "hit",
    "heard",
    "followed",
    "picks",
    "picking",
    "stops",
    "starts",
    "fades",
    "fading",
    "plays",
    "playing",
    "are",
    "is",
    "was",
    "were",
    "occurs",
    "occurring",
    "ongoing",
    "present",
    "taken",
    "being",
}


def _forms(stem: str) -> set[str]:
    forms = {stem, stem + "s", stem + "es", stem + "ed", stem + "ing"}
    if stem.endswith("e"):
        forms |= {stem[:-1] + "ing", stem + "d"}
    if stem.endswith("y"):
        forms |= {stem[:-1] + "ies", stem[:-1] + "ied"}
    if re.search(r"[^aeiou][aeiou][bdgklmnprtv]$", stem):
        forms |= {stem + stem[-1] + "ing", stem + stem[-1] + "ed"}
    return forms


VERBS = set().union(*(_forms(s) for s in VERB_STEMS)) | IRREGULAR
# -ing words that are not verb forms ("a ceiling fan", "something rattles", "during which")
ING_NOUNS = set(
    """something nothing anything everything thing ceiling building clothing morning evening
    ring string spring wing king sibling railing siding wedding lightning pudding ding
    during""".split()
)
# the whole of a person's or crowd's voice: a bare list splits where voice meets non-voice
VOCAL = set(
    """speech speaking speaks talk talks talking voice voices murmur murmurs murmuring chatter
    chattering conversation laugh laughs laughing laughter sing singing song whisper whispers
    whispering yell yelling shout shouting scream screaming cry crying babble babbling narration
    giggle giggling cheer cheering""".split()
)
CROWDS = set(
    """adult adults children kids boys girls males females persons baby babies infant infants
    toddler teen teenager crowd audience others""".split()
)
# what a voice travels through ("speaking over a loudspeaker") or how it sounds ("with a southern
# drawl"): a property of the source before, never a source of its own
CHANNELS = set(
    """speaker speakers loudspeaker loudspeakers intercom radio phone telephone microphone mic
    megaphone walkie-talkie pa speakerphone""".split()
)
MANNERS = {"accent", "drawl", "echo", "reverb", "lisp"}
# what "it" does when it is the weather, not a source mentioned before: "while it rains"
WEATHER = {"rains", "raining", "pours", "pouring", "snows", "snowing", "thunders", "storms"}
# adjectives the lists above do not hold: "electrical buzzing", "hydraulic hissing"
ADJECTIVE_ENDINGS = ("ical", "lic", "nic", "ous", "ive", "ful")
# a place or direction paired with another: "sirens ring near and far", "here and there"
PLACES = {"far", "near", "nearby", "close", "there", "here", "forth", "around", "about"}
# words that complete a verb rather than name a source after it ("running idle", "revving high")
COMPLEMENTS = {"idle", "fast", "slow", "high", "low", "hard"}
# plural sources that open clauses in AudioCaps ("and footsteps shuffle"), so never a second verb
PLURALS = set(
    """birds dogs waves pigeons ducks tires vehicles insects leaves cars bees bells engines goats
    frogs crickets sirens animals kids dishes objects horses wings footsteps gunshots horns pans
    cats females adults others girls pigs voices winds babies guns bugs motorcycles keys
    vibrations pots chickens seagulls males boys fireworks explosions doves""".split()
)
PEOPLE = HUMANS | CROWDS
QUALIFIERS = DETERMINERS | MODIFIERS  # words before a noun
WORD = re.compile(r"[a-z0-9'\-]+")
WEAK = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")
STRONG_SPLIT = re.compile(
    r"\s*,?\s*\b(" + "|".join(re.escape(c) for c in STRONG if c != ";") + r")\b\s*|\s*;\s*"
)
ADVERB_NOUNS = {"fly", "family", "belly", "jelly", "lily", "assembly", "bully", "rally"}


def _words(text: str) -> list[str]:
    return WORD.findall(text)


def _is_ing(word: str) -> bool:
    """A present participle or gerund ("rustling", "revving"), known stem or not."""
    return word.endswith("ing") and len(word) > 5 and word not in ING_NOUNS


def _is_verb(word: str) -> bool:
    return word in VERBS or word in AUX or _is_ing(word)


def _is_adverb(word: str) -> bool:
    return word.endswith("ly") and len(word) > 4 and word not in ADVERB_NOUNS


def _predicate(words: list[str]) -> int | None:
    """Index of the verb acting as predicate, None if there is none (a gerund used as a noun:
    "loud humming", or a bare noun phrase)."""
    for i, word in enumerate(words):
        if word in AUX and i > 0:
            return i
        if _is_verb(word) and i > 0 and words[i - 1] not in QUALIFIERS and not word.endswith("ed"):
            return i
    return None


def _has_predicate(words: list[str]) -> bool:
    return _predicate(words) is not None


def _is_human(words: list[str]) -> bool:
    """True if a phrase's subject (the words before its predicate) names people."""
    end = _predicate(words)
    return any(w in PEOPLE for w in words[: 3 if end is None else end])


def _people(words: list[str]) -> bool:
    """A bare list of people without a verb yet: "men", "a man and woman", "adult women"."""
    return (
        bool(words)
        and not _has_predicate(words)
        and all(
            w in PEOPLE or w in QUALIFIERS or w in {"and", "adult", "young", "old"} for w in words
        )
        and any(w in PEOPLE for w in words)
    )


def _adjectives_only(text: str) -> bool:
    """A determiner and adjectives with the noun still to come: "a loud", "a small, smooth"."""
    first, *rest = text.split(", ")
    words = _words(first)
    return (
        1 < len(words) <= 4
        and words[0] in {"a", "an", "the", "some"}
        and all(w in MODIFIERS or _is_ing(w) or "-" in w or w == "and" for w in words[1:])
        and all(len(_words(r)) == 1 for r in rest)
    )


def _pronoun(words: list[str]) -> bool:
    """A phrase that opens with a pronoun for a source mentioned before (not "it rains")."""
    return words[0] in PRONOUNS and not (words[0] == "it" and set(words[1:3]) & WEATHER)


def _is_vocal(words: list[str]) -> bool:
    return any(w in VOCAL for w in words)


def _starts_new_subject(words: list[str]) -> bool:
    """True if a phrase opens with a subject (determiner, noun, adjective) rather than a verb or
    adverb."""
    if not words:
        return False
    first = words[0]
    if _pronoun(words) or first in {
        "then",
        "also",
        "again",
        "continuously",
        "repeatedly",
        "is",
        "are",
        "to",
        "up",
        "down",
        "off",
        "out",
        "away",
        "back",
        "by",
    }:
        return False
    if first == "one" and (
        len(words) == 1
        or _is_adverb(words[1])
        or words[1] in PREPOSITIONS
        or words[1] == "of"
        and words[2:3]
        and words[2] in PRONOUNS
    ):
        return False  # "two men speak, one loudly and one in background", "one of them"
    if _is_adverb(first) and (len(words) == 1 or words[1] not in DETERMINERS | {"after", "before"}):
        return False  # "rain drops steadily and heavily plop down"
    if len(words) < 2:
        return not _is_verb(first)
    second = words[1]
    if first.endswith("ing") and _is_verb(first):
        if second in PRONOUNS or second in COMPLEMENTS:
            return False  # a verb with its object or complement: "tapping it", "running idle"
        # "rustling occurs", "slamming and splintering occurs" (a gerund subject with its own
        # verb) vs "meowing and groaning" (continuation); "flowing water falls" (a gerund used
        # as an adjective) also opens a new subject
        rest = words[1:]
        j = 0
        while j < len(rest) and (rest[j] == "and" or _is_ing(rest[j])):
            j += 1
        if j < len(rest) and j > 0 and rest[j] in AUX:
            return True
        return (
            second in AUX | {"of"}
            or second in VERBS
            and not second.endswith("ing")
            or not _is_verb(second)
            and not _is_adverb(second)
            and second not in PREPOSITIONS
        )
    if first in VERBS and first.endswith("s") and second in AUX and not second.endswith("s"):
        return True  # a plural noun with its verb: "meows occur", "barks are heard"
    if first in VERBS and not first.endswith(("s", "ed")):
        # a stem that is also a noun: "thunder roars", "sound of water moving"
        finite = second in VERBS and second.endswith("s") and not second.endswith("ss")
        if second == "of" or second in AUX or finite:
            return True
    return first in DETERMINERS or not _is_verb(first)


def _normalise(caption: str) -> str:
    if not isinstance(caption, str) or not re.search(r"[A-Za-z0-9]", caption):
        raise CaptionError(f"empty caption: {caption!r} has no words to parse")
    text = caption.lower().replace("’", "'")
    text = re.sub(r"[.!?]+\s+(?=[a-z0-9])", " ; ", text)  # a sentence ends: a strong break
    text = re.sub(r"\bas well\b(?! as)", " ", text)
    # "followed quickly by", and the frequent slip "followed a man speaking"
    text = re.sub(r"\bfollowed \w+ly by\b", "followed by", text)
    text = re.sub(r"\bfollowed (?=(?:a|an|the|some)\b)", "followed by ", text)
    text = re.sub(
        r"\b(over and over|again and again|on and off|back and forth|up and down)\b",
        "repeatedly",
        text,
    )
    text = re.sub(r"[.!?\"]+", " ", text)
    return re.sub(r"\s+", " ", text).strip(" ,;:")


def _split_strong(text: str) -> list[tuple[str, str]]:
    """Split at strong connectives; returns ``[(connective, piece), ...]`` (first connective '')."""
    parts = STRONG_SPLIT.split(text)
    out, connective = [], ""
    for i, part in enumerate(parts):
        if i % 2 == 1:
            connective = part or ";"
        elif part and part.strip(" ,"):
            out.append((connective, part.strip(" ,")))
    return out


def _agrees(left: list[str], right: list[str]) -> bool:
    """A second verb without its own subject, known or not: "a baby cries and babbles",
    "pigeons coo and flip wings". The unknown first word of ``right`` must take the same form as
    the predicate of ``left`` (-s after -s, -ed after -ed, bare after bare) and ``right`` must
    have no verb of its own."""
    verb = _predicate(left)
    w = right[0]
    if (
        verb is None
        or w in DETERMINERS
        or w in PRONOUNS
        or w in PEOPLE
        or w in PLURALS
        or _is_verb(w)
        or any(_is_verb(x) for x in right[1:])
    ):
        return False
    form = left[verb]
    if form in AUX and left[verb + 1 :] and left[verb + 1].endswith("ed"):
        return w.endswith("ed") and len(right) == 1  # "objects are tapped and rasped"
    if form in AUX or form.endswith("ing"):
        return False
    if form.endswith("s") and not form.endswith("ss"):
        return w.endswith("s") and not w.endswith(("ss", "us", "is"))
    if form.endswith("ed"):
        return w.endswith("ed")
    return len(right) > 1 and not w.endswith(("s", "ed", "ing", "ly")) or w.endswith("ize")


def _noun_doing(words: list[str]) -> bool:
    """A noun subject with an -ing predicate and no verb after it ("wind blowing", "a door
    opening"), not a gerund subject ("subtle splashing are present", "high-pitched whining")."""
    verb = _predicate(words)
    if verb is None or not _is_ing(words[verb]) or any(w in AUX for w in words[verb + 1 :]):
        return False
    adjective = MODIFIERS | {"of"}
    return not any(
        w in adjective or "-" in w or w.endswith(ADJECTIVE_ENDINGS) or _is_ing(w)
        for w in words[:verb]
    )


def _joins_previous(left_text: str, right: list[str], join: str) -> bool:
    """Whether chunk ``right`` (words) continues the source of ``left_text`` across a weak
    ``join`` ("and", a comma)."""
    left = _words(left_text)
    left_pred, right_pred = _has_predicate(left), _has_predicate(right)
    bare = right[0] not in DETERMINERS
    noun = not _is_verb(right[0]) or _is_ing(right[0])
    if not left_pred and not right_pred and bare and noun:
        if _is_vocal(left) != _is_vocal(right) and not (_is_human(left) and _is_vocal(right)):
            return False  # "female speech and sizzling", "distant murmuring and rustling"
    left_adjective = left[-1] in MODIFIERS and not _is_ing(left[-1])
    right_adjective = right[0] in MODIFIERS or _is_ing(right[0]) or "-" in right[0]
    if _adjectives_only(left_text) and bare and (left_adjective or "," in join and right_adjective):
        return True  # "a loud, long burp", "a soft and short beep", "a gurgling, bubbling"
    again = right[0] == left[-1] and not _has_predicate(right)
    if again or len(right) == 1 and right[0] in PLACES:
        return True  # "louder and louder", "further and further away", "near and far"
    if not _starts_new_subject(right) or "," not in join and _agrees(left, right):
        return True  # "a man speaks and laughs", "a baby cries and babbles"
    if _people(left) and right[0] in PEOPLE:
        return True  # "men, women, children speaking"
    if right[0] in HUMANS and len(right) == 1 and left[-1] in HUMANS:
        return True  # "a speech between a man and woman"
    if not left_pred and right_pred and ("," not in join or _people(left)):
        # shared predicate: "adults and children speak", not "a thud and footsteps shuffling"
        # nor a sound event before a new subject: "hissing and wind blowing"
        if _is_ing(left[-1]) and _noun_doing(right):
            return False
        same_voice = _is_vocal(left) == _is_vocal(_subject(right))
        number = left[0] in {"a", "an"} and "of" not in left and right[0] in PLURALS
        return _is_human(left) == _is_human(right) and same_voice and not number
    # a bare list of sound events from one action: "hissing and scraping noise"
    sound = _is_ing(left[-1]) or left[-1] in {"noise", "noises", "sound", "sounds"}
    head = next((w for w in right if w not in MODIFIERS or _is_ing(w)), right[-1])
    event = _is_ing(head) or len(right) == 1 and right[0].endswith("s") and "," not in join
    return sound and not left_pred and not right_pred and bare and event


def _split_weak(piece: str) -> list[tuple[str, str]]:
    """Split a piece at commas and 'and' where a new source starts."""
    chunks = [c.strip() for c in WEAK.split(piece) if c.strip()]
    joins = WEAK.findall(piece)
    out: list[tuple[str, str]] = []
    for i, chunk in enumerate(chunks):
        words = _words(FILLERS.sub("", chunk)) or _words(chunk)
        if out and _joins_previous(out[-1][1], words, joins[i - 1]):
            out[-1] = (out[-1][0], f"{out[-1][1]}{joins[i - 1]}{chunk}")
            continue
        out.append(("and" if out else "", chunk))
    return out


def _subject(words: list[str]) -> list[str]:
    """The words before the predicate, without determiners: ["faucet", "water"]."""
    return [w for w in words[: _predicate(words)] if w not in DETERMINERS]


def _inflected(words: list[str]) -> bool:
    """True if the predicate is an inflected verb ("dripping", "runs"), not a bare stem that may
    be a noun ("a wind chime chimes" has its predicate at "chime")."""
    verb = _predicate(words)
    return verb is not None and (words[verb] in AUX or words[verb].endswith(("s", "ing", "ed")))


def _refers_back(words: list[str], earlier: list[list[str]]) -> bool:
    """A source mentioned before: 'the engine fades' after 'an engine idles', 'more beeps go off'
    after 'a beep', a bare 'faucet water pouring' after 'faucet water dripping', 'a motorboat
    engine powering down' after 'a motorboat engine running'."""
    if len(words) < 2 or words[1] in {"sound", "sounds", "noise"}:
        return False
    if words[0] not in {"the", "this", "that", "more"}:
        subject = _subject(words)
        # a bare subject, or a compound one repeated word for word ("a motorboat engine")
        repeated = words[0] not in DETERMINERS or words[0] in {"a", "an"} and len(subject) > 1
        return (
            repeated
            and _has_predicate(words)
            and not set(subject) & PEOPLE
            and any(subject == _subject(prev) and _inflected(prev) for prev in earlier)
        )
    nouns = [w for w in words[1:4] if w not in QUALIFIERS and w not in PREPOSITIONS]
    heads = nouns[:1] + [w for w in nouns if not _is_verb(w)][:1]
    if heads and heads[0] in HUMANS:
        return any(HUMANS & set(prev) for prev in earlier)
    stems = {h.rstrip("s") for h in heads}
    return any(stems & {w.rstrip("s") for w in prev} for prev in earlier)


def _modifies(connective: str, words: list[str], previous: list[str]) -> bool:
    """A 'with'/'over' phrase that describes the source before instead of adding one: "speaking
    over a loudspeaker", "with a southern drawl", "sawing with a hand saw", "a vehicle with siren
    blaring is coming"."""
    if connective not in {"with", "over"}:
        return False
    described = CHANNELS if connective == "over" else MANNERS
    if words == ["another"] or not _has_predicate(words) and described & set(words):
        return True
    if connective != "with":
        return False
    tool = [w for w in words if w not in QUALIFIERS][-1:]
    if (
        words[0] in {"a", "an", "the"}
        and tool
        and tool[0] not in {"sound", "noise"}
        and any(w.startswith(tool[0]) and w != tool[0] for w in previous)
    ):
        return len(words) <= 4  # the tool that makes the sound before: "with a hand saw"
    ing = next((i for i, w in enumerate(words) if i and _is_ing(w)), None)
    return (
        not _has_predicate(previous)
        and ing is not None
        and any(w in AUX for w in words[ing + 1 :])
        and not any(w in AUX for w in words[:ing])
    )


def parse(caption: str) -> list[str]:
    """Split a caption into one clause per sound source, in order of mention.

    >>> parse("A man speaks while a dog barks and rain falls")
    ['a man speaks', 'a dog barks', 'rain falls']
    """
    text = _normalise(caption)
    text = FILLERS.sub("", text)
    clauses: list[str] = []
    for connective, piece in _split_strong(text):
        for i, (_, chunk) in enumerate(_split_weak(piece)):
            chunk = re.sub(r"\s+", " ", TRAILING.sub("", FILLERS.sub("", chunk))).strip(" ,")
            words = _words(chunk)
            if not words or chunk in NOT_SOURCES:
                continue
            if (
                clauses
                and i == 0
                and (
                    _pronoun(words)
                    or connective in SAME_SOURCE_CONNECTIVES
                    and not _starts_new_subject(words)
                    or _modifies(connective, words, _words(clauses[-1]))
                )
            ):
                clauses[-1] = f"{clauses[-1]} {connective} {chunk}".replace(" ; ", " ")
                continue
            if clauses and (_refers_back(words, [_words(c) for c in clauses]) or chunk in clauses):
                continue
            clauses.append(chunk)
    if not clauses:
        raise CaptionError(f"no sound source found in caption {caption!r}")
    return [re.sub(r" (?:is|are)$", "", c) for c in clauses]  # "a hum is | followed by ..."


def slots(clauses: list[str], k: int, rng=None) -> tuple[list[str], list[float]]:
    """Fit clauses to exactly ``k`` slots; returns ``(clauses_k, alpha_k)``.

    Fewer clauses are padded by repeating them (cyclically) and each copy gets
    ``alpha = 1 / copies``, so ``sum_k alpha_k * estimate_k`` still adds up to the mixture; more
    clauses are subsampled (``rng.choice`` if given, else the first ``k``) with ``alpha = 1``.
    """
    if not clauses:
        raise CaptionError("no clauses to fit into slots")
    if len(clauses) >= k:
        chosen = (
            sorted(rng.choice(len(clauses), size=k, replace=False)) if rng is not None else range(k)
        )
        return [clauses[i] for i in chosen], [1.0] * k
    padded = [clauses[i % len(clauses)] for i in range(k)]
    counts = {c: padded.count(c) for c in padded}
    return padded, [1.0 / counts[c] for c in padded]


def content_words(text: str) -> set[str]:
    """Words that carry meaning (for clause matching): no determiners, auxiliaries or fillers."""
    stop = (
        DETERMINERS
        | AUX
        | {
            "of",
            "in",
            "on",
            "at",
            "to",
            "by",
            "and",
            "from",
            "into",
            "its",
            "it",
            "up",
            "down",
            "nearby",
            "distance",
            "background",
            "times",
            "loudly",
            "briefly",
            "sound",
        }
    )
    return {w.rstrip("s") for w in _words(text.lower()) if w not in stop}


def clause_match(a: str, b: str) -> bool:
    """Two clauses match when they share most content words (Jaccard >= 0.5)."""
    wa, wb = content_words(a), content_words(b)
    return bool(wa | wb) and len(wa & wb) / len(wa | wb) >= 0.5


def evaluate_parser(pairs: Iterable[tuple[str, list[str]]]) -> dict:
    """Source-count accuracy and clause-level precision/recall/F1 of :func:`parse` on gold pairs."""
    n = correct = tp = n_pred = n_gold = 0
    for caption, gold in pairs:
        pred = parse(caption)
        n += 1
        correct += len(pred) == len(gold)
        n_pred, n_gold = n_pred + len(pred), n_gold + len(gold)
        unmatched = list(gold)
        for p in pred:
            hit = next((g for g in unmatched if clause_match(p, g)), None)
            if hit is not None:
                unmatched.remove(hit)
                tp += 1
    precision, recall = tp / max(n_pred, 1), tp / max(n_gold, 1)
    return {
        "captions": n,
        "count_accuracy": correct / max(n, 1),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(precision + recall, 1e-9),
    }
