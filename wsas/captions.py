"""Caption -> one clause per sound source, and fixed K slots with alpha weights.

The parser is rule based, as in the paper, made robust on real AudioCaps phrasing:

1. *Strong* connectives always separate sources ("followed by", "while", "as", "with",
   "then", "before", "after", "as well as", ";" ...).
2. *Weak* joins ("and", commas) separate sources only when the right-hand side starts a new
   subject and the left-hand side is a full clause on its own: "a man speaks and a dog barks"
   is two sources; "a man speaks and laughs" (verb continues) and "adults and children speak"
   (shared predicate) are one.
3. Pieces that refer back (a pronoun, "the engine" already mentioned, a subjectless verb)
   merge into the source they describe; "silence" is not a source; repeats are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from wsas.errors import CaptionError

STRONG = (
    "is accompanied by",
    "accompanied by",
    "after which",
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
    "against a background of",
    ";",
)
FILLERS = re.compile(
    r"^(?:(?:in a quiet environment|simultaneously|meanwhile|at first|at the same time|first|"
    r"there (?:is|are)|you can hear|we hear|one can hear|sounds? of|the sound of)\b[ ,]*)+"
)
TRAILING = re.compile(
    r"\b(?:in the background|in the distance|in the foreground|at the same time|all at once|"
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
VERB_STEMS = """speak talk bark chirp blow run idle pass laugh cry ring honk crash flow pour splash fall buzz hum whir
whirr roar rev accelerate decelerate meow quack croak tick ticktock beep click knock tap bang explode fire play sing
sound occur whistle yell shout cheer clap applaud hiss rustle rattle squeak squeal creak drip trickle gurgle vibrate
rumble thump oink bleat moo neigh coo flap fly drive move start stop continue approach toot snore sneeze cough
breathe sniff chew type crinkle crunch scrape rub sand spray flush drill saw hammer bark yelp growl howl purr hiss
chug clank clang clatter jingle jangle screech scream shriek giggle snort grunt wail whine whimper groan moan
murmur mumble whisper chatter narrate say give deliver operate work idle revs roar splash gush drone echo
squawk caw tweet warble crow cluck gobble buzz sizzle crackle pop burst boom blast thunder pour spray swish whoosh
swoosh zoom pass speed race skid squeal brake slam shut close open slide drop hit strike beat pound tap dribble
bounce roll grind sand drill saw cut chop crunch munch slurp gulp swallow burp hiccup snore breathe pant gasp
wheeze sigh hum sing chant pray preach lecture announce communicate converse call shout cheer clap stomp walk step
march jog blow gust rustle sway creak bleat baa low whinny snort trot gallop clop hoot honk beep inhale exhale
squeeze bow pluck strum pick strike fill hold roll break surge hover wheeze oom-pah ring come resonate
smash tinkle chime jingle""".split()
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
    forms = {stem, stem + "s", stem + "es", stem + "ed", stem + "ing", stem + "d"}
    if stem.endswith("e"):
        forms |= {stem[:-1] + "ing", stem + "d"}
    if stem.endswith("y"):
        forms |= {stem[:-1] + "ies", stem[:-1] + "ied"}
    if re.search(r"[^aeiou][aeiou][bdgklmnprt]$", stem):
        forms |= {stem + stem[-1] + "ing", stem + stem[-1] + "ed"}
    return forms


VERBS = set().union(*(_forms(s) for s in VERB_STEMS)) | IRREGULAR


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9'\-]+", text)


def _is_verb(word: str) -> bool:
    return word in VERBS or word in AUX


def _has_predicate(words: list[str]) -> bool:
    """True if a phrase has a verb acting as predicate (not a gerund used as a noun: "loud humming")."""
    for i, word in enumerate(words):
        if word in AUX and i > 0:
            return True
        if (
            _is_verb(word)
            and i > 0
            and words[i - 1] not in DETERMINERS | MODIFIERS
            and not word.endswith("ed")
        ):
            return True
    return False


def _starts_new_subject(words: list[str]) -> bool:
    """True if a phrase opens with a subject (determiner, noun, adjective) rather than a verb or adverb."""
    if not words:
        return False
    first = words[0]
    if first in PRONOUNS or first in {
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
    if first.endswith("ing") and _is_verb(first):
        # "rustling occurs" (a gerund subject with its own verb) vs "meowing and groaning" (continuation)
        # "flowing water falls" (a gerund used as an adjective) also opens a new subject
        if len(words) < 2:
            return False
        second = words[1]
        return (
            second in AUX | {"of"}
            or second in VERBS
            and not second.endswith("ing")
            or not _is_verb(second)
            and not second.endswith("ly")
            and second not in PREPOSITIONS
        )
    return first in DETERMINERS or not _is_verb(first)


def _normalise(caption: str) -> str:
    if not isinstance(caption, str) or not re.search(r"[A-Za-z0-9]", caption):
        raise CaptionError(f"empty caption: {caption!r} has no words to parse")
    text = caption.lower().replace("’", "'")
    text = re.sub(r"[.!?\"]+", " ", text)
    return re.sub(r"\s+", " ", text).strip(" ,;:")


def _split_strong(text: str) -> list[tuple[str, str]]:
    """Split at strong connectives; returns ``[(connective, piece), ...]`` (first connective '')."""
    pattern = (
        r"\s*,?\s*\b(" + "|".join(re.escape(c) for c in STRONG if c != ";") + r")\b\s*|\s*;\s*"
    )
    parts = re.split(pattern, text)
    out, connective = [], ""
    for i, part in enumerate(parts):
        if i % 2 == 1:
            connective = part or ";"
        elif part and part.strip(" ,"):
            out.append((connective, part.strip(" ,")))
    return out


def _split_weak(piece: str) -> list[tuple[str, str]]:
    """Split a piece at commas and 'and' where a new source starts."""
    chunks = [c.strip() for c in re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+", piece) if c.strip()]
    joins = re.findall(r"\s*,\s*(?:and\s+)?|\s+and\s+", piece)
    out: list[tuple[str, str]] = []
    for i, chunk in enumerate(chunks):
        words = _words(chunk)
        if out and not _starts_new_subject(words):
            out[-1] = (out[-1][0], f"{out[-1][1]} and {chunk}")
            continue
        if (
            out
            and not _has_predicate(_words(out[-1][1]))
            and _has_predicate(words)
            and "," not in joins[i - 1]
        ):
            out[-1] = (
                out[-1][0],
                f"{out[-1][1]} and {chunk}",
            )  # shared predicate: "adults and children speak"
            continue
        out.append(("and" if out else "", chunk))
    return out


def _refers_back(words: list[str], earlier: list[list[str]]) -> bool:
    """'the engine fades' after 'an engine idles': a definite mention of an earlier source."""
    if (
        len(words) < 2
        or words[0] not in {"the", "this", "that"}
        or words[1] in {"sound", "sounds", "noise"}
    ):
        return False
    heads = [w for w in words[1:4] if not _is_verb(w) and w not in MODIFIERS | DETERMINERS][:1]
    if heads and heads[0] in HUMANS:
        return any(HUMANS & set(prev) for prev in earlier)
    return any(h in prev for h in heads for prev in earlier)


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
                    words[0] in PRONOUNS
                    or connective in SAME_SOURCE_CONNECTIVES
                    and not _starts_new_subject(words)
                )
            ):
                clauses[-1] = f"{clauses[-1]} {connective} {chunk}".replace(" ; ", " ")
                continue
            if clauses and (_refers_back(words, [_words(c) for c in clauses]) or chunk in clauses):
                continue
            clauses.append(chunk)
    if not clauses:
        raise CaptionError(f"no sound source found in caption {caption!r}")
    return clauses


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
