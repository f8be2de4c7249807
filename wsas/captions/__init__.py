"""Caption -> one clause per sound source, and fixed K slots with alpha weights.

- :mod:`~wsas.captions.parser`: the rules (in prose at its top) and :func:`parse`;
- :mod:`~wsas.captions.words`: the rules' data: connectives and word lists;
- :mod:`~wsas.captions.phrases`: what a word or phrase is (a verb, a predicate, people ...);
- :mod:`~wsas.captions.clauses`: :func:`slots`, clause matching, and scoring the parser.
"""

from wsas.captions.clauses import (
    clause_match,
    content_words,
    evaluate_parser,
    slots,
    source_counts,
)
from wsas.captions.parser import parse

__all__ = ["clause_match", "content_words", "evaluate_parser", "parse", "slots", "source_counts"]
