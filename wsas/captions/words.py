"""The parser's rules as data: connectives, word classes and the patterns built from them.

:mod:`wsas.captions.parser` holds the rules that read these lists; a new word that the parser
misreads is usually a line here, not a new rule.
"""

from __future__ import annotations

import re

# connectives that always separate sources (unless a rule in the parser says the phrase after
# them describes the source before); the order matters: the longest match must come first
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
# connectives after which a phrase without its own subject continues the source before
SAME_SOURCE_CONNECTIVES = frozenset(
    ["while", "whilst", "then", "and then", "before", "after", "as", "after which"]
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
# pieces that name no source: dropped
NOT_SOURCES = frozenset(
    ["silence", "brief silence", "a brief silence", "a moment of silence", "quiet", "pause"]
    + ["a pause"]
)

PRONOUNS = frozenset("it he she they him her them its this that which who".split())
DETERMINERS = frozenset(
    """a an the some several multiple many few another other two three one more various numerous
    first second""".split()
)
HUMANS = frozenset(
    """man woman person male female boy girl child kid speaker narrator people men women lady guy
    someone""".split()
)
PREPOSITIONS = frozenset(
    """to at in on by into with for up down away along around over off out through from and then
    again once repeatedly continuously""".split()
)
# adjectives and adverbs before a noun or after a verb ("continuos" is a frequent misspelling)
MODIFIERS = frozenset(
    """loud soft softly faint light heavy rapid rhythmic intermittent mechanical electronic digital
    high low distant brief continuous continuos constant repetitive steady quiet muffled creaky
    small large big deep sharp gentle short long consistent periodic random metal metallic wooden
    static shrill increasingly loudly quietly very running flowing humming buzzing whistling
    plopping rattling hissing chirping compressed pitched higher lower electric""".split()
)
AUX = frozenset(
    """is are was were be being been has have had gets get can continues continue occurs
    occur""".split()
)
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
# verb forms that the regular endings of VERB_STEMS do not make, and other words that act as
# the predicate ("present", "ongoing")
IRREGULAR = frozenset(
    """ran flew blew rang fell sang spoke spoken gave given said made makes making make takes
    taking took goes going went comes coming came hit heard followed picks picking stops starts
    fades fading plays playing are is was were occurs occurring ongoing present taken
    being""".split()
)


def _forms(stem: str) -> set[str]:
    """The regular forms of a verb stem, generously: "tap" -> taps, tapped, tapping, ..."""
    forms = {stem, stem + "s", stem + "es", stem + "ed", stem + "ing"}
    if stem.endswith("e"):
        forms |= {stem[:-1] + "ing", stem + "d"}
    if stem.endswith("y"):
        forms |= {stem[:-1] + "ies", stem[:-1] + "ied"}
    if re.search(r"[^aeiou][aeiou][bdgklmnprtv]$", stem):
        forms |= {stem + stem[-1] + "ing", stem + stem[-1] + "ed"}
    return forms


VERBS = frozenset().union(*(_forms(s) for s in VERB_STEMS)) | IRREGULAR
# -ing words that are not verb forms ("a ceiling fan", "something rattles", "during which")
ING_NOUNS = frozenset(
    """something nothing anything everything thing ceiling building clothing morning evening
    ring string spring wing king sibling railing siding wedding lightning pudding ding
    during""".split()
)
# -ly words that are not adverbs
ADVERB_NOUNS = frozenset("fly family belly jelly lily assembly bully rally".split())
# the whole of a person's or crowd's voice: a bare list splits where voice meets non-voice
VOCAL = frozenset(
    """speech speaking speaks talk talks talking voice voices murmur murmurs murmuring chatter
    chattering conversation laugh laughs laughing laughter sing singing song whisper whispers
    whispering yell yelling shout shouting scream screaming cry crying babble babbling narration
    giggle giggling cheer cheering""".split()
)
CROWDS = frozenset(
    """adult adults children kids boys girls males females persons baby babies infant infants
    toddler teen teenager crowd audience others""".split()
)
# what a voice travels through ("speaking over a loudspeaker") or how it sounds ("with a southern
# drawl"): a property of the source before, never a source of its own
CHANNELS = frozenset(
    """speaker speakers loudspeaker loudspeakers intercom radio phone telephone microphone mic
    megaphone walkie-talkie pa speakerphone""".split()
)
MANNERS = frozenset("accent drawl echo reverb lisp".split())
# what "it" does when it is the weather, not a source mentioned before: "while it rains"
WEATHER = frozenset("rains raining pours pouring snows snowing thunders storms".split())
# adjectives the lists above do not hold: "electrical buzzing", "hydraulic hissing"
ADJECTIVE_ENDINGS = ("ical", "lic", "nic", "ous", "ive", "ful")
# words that open a continuation of the phrase before, never a new subject: "and then ...",
# "and is heard", "and off again"
CONTINUATIONS = frozenset(
    "then also again continuously repeatedly is are to up down off out away back by".split()
)
# a place or direction paired with another: "sirens ring near and far", "here and there"
PLACES = frozenset("far near nearby close there here forth around about".split())
# words that complete a verb rather than name a source after it ("running idle", "revving high")
COMPLEMENTS = frozenset("idle fast slow high low hard".split())
# plural sources that open clauses in AudioCaps ("and footsteps shuffle"), so never a second verb
PLURALS = frozenset(
    """birds dogs waves pigeons ducks tires vehicles insects leaves cars bees bells engines goats
    frogs crickets sirens animals kids dishes objects horses wings footsteps gunshots horns pans
    cats females adults others girls pigs voices winds babies guns bugs motorcycles keys
    vibrations pots chickens seagulls males boys fireworks explosions doves""".split()
)
PEOPLE = HUMANS | CROWDS
QUALIFIERS = DETERMINERS | MODIFIERS  # words before a noun
# words that carry no meaning when two clauses are matched (besides determiners and auxiliaries)
STOP_WORDS = (
    DETERMINERS
    | AUX
    | frozenset(
        """of in on at to by and from into its it up down nearby distance background times loudly
        briefly sound""".split()
    )
)

WORD = re.compile(r"[a-z0-9'\-]+")
WEAK = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")
STRONG_SPLIT = re.compile(
    r"\s*,?\s*\b(" + "|".join(re.escape(c) for c in STRONG if c != ";") + r")\b\s*|\s*;\s*"
)
