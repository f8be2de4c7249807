"""Caption -> one clause per sound source: the rules and :func:`parse`.

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

The word lists these rules read are data in :mod:`wsas.captions.words`; what a word or phrase
is (a verb, a predicate, people) is decided in :mod:`wsas.captions.phrases`.
"""

from __future__ import annotations

import re

from wsas.captions.phrases import (
    adjectives_only,
    bare_people,
    has_predicate,
    inflected,
    is_adverb,
    is_human,
    is_ing,
    is_pronoun,
    is_verb,
    is_vocal,
    noun_doing,
    predicate,
    subject_of,
    tokens,
)
from wsas.captions.words import (
    AUX,
    CHANNELS,
    COMPLEMENTS,
    CONTINUATIONS,
    DETERMINERS,
    FILLERS,
    HUMANS,
    MANNERS,
    MODIFIERS,
    NOT_SOURCES,
    PEOPLE,
    PLACES,
    PLURALS,
    PREPOSITIONS,
    PRONOUNS,
    QUALIFIERS,
    SAME_SOURCE_CONNECTIVES,
    STRONG_SPLIT,
    TRAILING,
    VERBS,
    WEAK,
)
from wsas.errors import CaptionError


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


def _starts_new_subject(words: list[str]) -> bool:
    """True if a phrase opens with a subject (determiner, noun, adjective) rather than a verb or
    adverb."""
    if not words:
        return False
    first = words[0]
    if is_pronoun(words) or first in CONTINUATIONS:
        return False
    if first == "one" and (
        len(words) == 1
        or is_adverb(words[1])
        or words[1] in PREPOSITIONS
        or words[1] == "of"
        and words[2:3]
        and words[2] in PRONOUNS
    ):
        return False  # "two men speak, one loudly and one in background", "one of them"
    if is_adverb(first) and (len(words) == 1 or words[1] not in DETERMINERS | {"after", "before"}):
        return False  # "rain drops steadily and heavily plop down"
    if len(words) < 2:
        return not is_verb(first)
    second = words[1]
    if first.endswith("ing") and is_verb(first):
        if second in PRONOUNS or second in COMPLEMENTS:
            return False  # a verb with its object or complement: "tapping it", "running idle"
        # "rustling occurs", "slamming and splintering occurs" (a gerund subject with its own
        # verb) vs "meowing and groaning" (continuation); "flowing water falls" (a gerund used
        # as an adjective) also opens a new subject
        rest = words[1:]
        j = 0
        while j < len(rest) and (rest[j] == "and" or is_ing(rest[j])):
            j += 1
        if j < len(rest) and j > 0 and rest[j] in AUX:
            return True
        return (
            second in AUX | {"of"}
            or second in VERBS
            and not second.endswith("ing")
            or not is_verb(second)
            and not is_adverb(second)
            and second not in PREPOSITIONS
        )
    if first in VERBS and first.endswith("s") and second in AUX and not second.endswith("s"):
        return True  # a plural noun with its verb: "meows occur", "barks are heard"
    if first in VERBS and not first.endswith(("s", "ed")):
        # a stem that is also a noun: "thunder roars", "sound of water moving"
        finite = second in VERBS and second.endswith("s") and not second.endswith("ss")
        if second == "of" or second in AUX or finite:
            return True
    return first in DETERMINERS or not is_verb(first)


def _agrees(left: list[str], right: list[str]) -> bool:
    """A second verb without its own subject, known or not: "a baby cries and babbles",
    "pigeons coo and flip wings". The unknown first word of ``right`` must take the same form as
    the predicate of ``left`` (-s after -s, -ed after -ed, bare after bare) and ``right`` must
    have no verb of its own."""
    verb = predicate(left)
    w = right[0]
    if (
        verb is None
        or w in DETERMINERS
        or w in PRONOUNS
        or w in PEOPLE
        or w in PLURALS
        or is_verb(w)
        or any(is_verb(x) for x in right[1:])
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


def _joins_previous(left_text: str, right: list[str], join: str) -> bool:
    """Whether chunk ``right`` (words) continues the source of ``left_text`` across a weak
    ``join`` ("and", a comma)."""
    left = tokens(left_text)
    left_pred, right_pred = has_predicate(left), has_predicate(right)
    bare = right[0] not in DETERMINERS
    noun = not is_verb(right[0]) or is_ing(right[0])
    if not left_pred and not right_pred and bare and noun:
        if is_vocal(left) != is_vocal(right) and not (is_human(left) and is_vocal(right)):
            return False  # "female speech and sizzling", "distant murmuring and rustling"
    left_adjective = left[-1] in MODIFIERS and not is_ing(left[-1])
    right_adjective = right[0] in MODIFIERS or is_ing(right[0]) or "-" in right[0]
    if adjectives_only(left_text) and bare and (left_adjective or "," in join and right_adjective):
        return True  # "a loud, long burp", "a soft and short beep", "a gurgling, bubbling"
    again = right[0] == left[-1] and not has_predicate(right)
    if again or len(right) == 1 and right[0] in PLACES:
        return True  # "louder and louder", "further and further away", "near and far"
    if not _starts_new_subject(right) or "," not in join and _agrees(left, right):
        return True  # "a man speaks and laughs", "a baby cries and babbles"
    if bare_people(left) and right[0] in PEOPLE:
        return True  # "men, women, children speaking"
    if right[0] in HUMANS and len(right) == 1 and left[-1] in HUMANS:
        return True  # "a speech between a man and woman"
    if not left_pred and right_pred and ("," not in join or bare_people(left)):
        # shared predicate: "adults and children speak", not "a thud and footsteps shuffling"
        # nor a sound event before a new subject: "hissing and wind blowing"
        if is_ing(left[-1]) and noun_doing(right):
            return False
        same_voice = is_vocal(left) == is_vocal(subject_of(right))
        number = left[0] in {"a", "an"} and "of" not in left and right[0] in PLURALS
        return is_human(left) == is_human(right) and same_voice and not number
    # a bare list of sound events from one action: "hissing and scraping noise"
    sound = is_ing(left[-1]) or left[-1] in {"noise", "noises", "sound", "sounds"}
    head = next((w for w in right if w not in MODIFIERS or is_ing(w)), right[-1])
    event = is_ing(head) or len(right) == 1 and right[0].endswith("s") and "," not in join
    return sound and not left_pred and not right_pred and bare and event


def _split_weak(piece: str) -> list[tuple[str, str]]:
    """Split a piece at commas and 'and' where a new source starts."""
    chunks = [c.strip() for c in WEAK.split(piece) if c.strip()]
    joins = WEAK.findall(piece)
    out: list[tuple[str, str]] = []
    for i, chunk in enumerate(chunks):
        words = tokens(FILLERS.sub("", chunk)) or tokens(chunk)
        if out and _joins_previous(out[-1][1], words, joins[i - 1]):
            out[-1] = (out[-1][0], f"{out[-1][1]}{joins[i - 1]}{chunk}")
            continue
        out.append(("and" if out else "", chunk))
    return out


def _refers_back(words: list[str], earlier: list[list[str]]) -> bool:
    """A source mentioned before: 'the engine fades' after 'an engine idles', 'more beeps go off'
    after 'a beep', a bare 'faucet water pouring' after 'faucet water dripping', 'a motorboat
    engine powering down' after 'a motorboat engine running'."""
    if len(words) < 2 or words[1] in {"sound", "sounds", "noise"}:
        return False
    if words[0] not in {"the", "this", "that", "more"}:
        subject = subject_of(words)
        # a bare subject, or a compound one repeated word for word ("a motorboat engine")
        repeated = words[0] not in DETERMINERS or words[0] in {"a", "an"} and len(subject) > 1
        return (
            repeated
            and has_predicate(words)
            and not set(subject) & PEOPLE
            and any(subject == subject_of(prev) and inflected(prev) for prev in earlier)
        )
    nouns = [w for w in words[1:4] if w not in QUALIFIERS and w not in PREPOSITIONS]
    heads = nouns[:1] + [w for w in nouns if not is_verb(w)][:1]
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
    if words == ["another"] or not has_predicate(words) and described & set(words):
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
    ing = next((i for i, w in enumerate(words) if i and is_ing(w)), None)
    return (
        not has_predicate(previous)
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
            words = tokens(chunk)
            if not words or chunk in NOT_SOURCES:
                continue
            if (
                clauses
                and i == 0
                and (
                    is_pronoun(words)
                    or connective in SAME_SOURCE_CONNECTIVES
                    and not _starts_new_subject(words)
                    or _modifies(connective, words, tokens(clauses[-1]))
                )
            ):
                clauses[-1] = f"{clauses[-1]} {connective} {chunk}".replace(" ; ", " ")
                continue
            if clauses and (_refers_back(words, [tokens(c) for c in clauses]) or chunk in clauses):
                continue
            clauses.append(chunk)
    if not clauses:
        raise CaptionError(f"no sound source found in caption {caption!r}")
    return [re.sub(r" (?:is|are)$", "", c) for c in clauses]  # "a hum is | followed by ..."
