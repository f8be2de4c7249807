"""What a word or a phrase is: a verb, a predicate, a subject, people, a pronoun, a voice.

A phrase is a list of lower-case words (:func:`tokens`). These tests read the lists in
:mod:`wsas.captions.words`; the rules that decide where sources split are in
:mod:`wsas.captions.parser`.
"""

from __future__ import annotations

from wsas.captions.words import (
    ADJECTIVE_ENDINGS,
    ADVERB_NOUNS,
    AUX,
    DETERMINERS,
    ING_NOUNS,
    MODIFIERS,
    PEOPLE,
    PRONOUNS,
    QUALIFIERS,
    VERBS,
    VOCAL,
    WEATHER,
    WORD,
)


def tokens(text: str) -> list[str]:
    """The words of a (lower-case) text, without punctuation."""
    return WORD.findall(text)


def is_ing(word: str) -> bool:
    """A present participle or gerund ("rustling", "revving"), known stem or not."""
    return word.endswith("ing") and len(word) > 5 and word not in ING_NOUNS


def is_verb(word: str) -> bool:
    return word in VERBS or word in AUX or is_ing(word)


def is_adverb(word: str) -> bool:
    return word.endswith("ly") and len(word) > 4 and word not in ADVERB_NOUNS


def predicate(words: list[str]) -> int | None:
    """Index of the verb acting as predicate, None if there is none (a gerund used as a noun:
    "loud humming", or a bare noun phrase)."""
    for i, word in enumerate(words):
        if word in AUX and i > 0:
            return i
        if is_verb(word) and i > 0 and words[i - 1] not in QUALIFIERS and not word.endswith("ed"):
            return i
    return None


def has_predicate(words: list[str]) -> bool:
    return predicate(words) is not None


def subject_of(words: list[str]) -> list[str]:
    """The words before the predicate, without determiners: ["faucet", "water"]."""
    return [w for w in words[: predicate(words)] if w not in DETERMINERS]


def inflected(words: list[str]) -> bool:
    """True if the predicate is an inflected verb ("dripping", "runs"), not a bare stem that may
    be a noun ("a wind chime chimes" has its predicate at "chime")."""
    verb = predicate(words)
    return verb is not None and (words[verb] in AUX or words[verb].endswith(("s", "ing", "ed")))


def is_human(words: list[str]) -> bool:
    """True if a phrase's subject (the words before its predicate) names people."""
    end = predicate(words)
    return any(w in PEOPLE for w in words[: 3 if end is None else end])


def bare_people(words: list[str]) -> bool:
    """A bare list of people without a verb yet: "men", "a man and woman", "adult women"."""
    return (
        bool(words)
        and not has_predicate(words)
        and all(
            w in PEOPLE or w in QUALIFIERS or w in {"and", "adult", "young", "old"} for w in words
        )
        and any(w in PEOPLE for w in words)
    )


def adjectives_only(text: str) -> bool:
    """A determiner and adjectives with the noun still to come: "a loud", "a small, smooth"."""
    first, *rest = text.split(", ")
    words = tokens(first)
    return (
        1 < len(words) <= 4
        and words[0] in {"a", "an", "the", "some"}
        and all(w in MODIFIERS or is_ing(w) or "-" in w or w == "and" for w in words[1:])
        and all(len(tokens(r)) == 1 for r in rest)
    )


def is_pronoun(words: list[str]) -> bool:
    """A phrase that opens with a pronoun for a source mentioned before (not "it rains")."""
    return words[0] in PRONOUNS and not (words[0] == "it" and set(words[1:3]) & WEATHER)


def is_vocal(words: list[str]) -> bool:
    return any(w in VOCAL for w in words)


def noun_doing(words: list[str]) -> bool:
    """A noun subject with an -ing predicate and no verb after it ("wind blowing", "a door
    opening"), not a gerund subject ("subtle splashing are present", "high-pitched whining")."""
    verb = predicate(words)
    if verb is None or not is_ing(words[verb]) or any(w in AUX for w in words[verb + 1 :]):
        return False
    adjective = MODIFIERS | {"of"}
    return not any(
        w in adjective or "-" in w or w.endswith(ADJECTIVE_ENDINGS) or is_ing(w)
        for w in words[:verb]
    )
