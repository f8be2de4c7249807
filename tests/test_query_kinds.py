"""wsas.lab.query_kinds: text queries against queries by example on the same mixtures."""

import pytest
import torch


def test_an_example_is_another_clip_of_the_same_class(smoke_corpus):
    from wsas.data.datasets import load_embedded
    from wsas.data.mixing import fixed_pairs
    from wsas.lab.query_kinds import example_clips

    clips = load_embedded(smoke_corpus, "test")
    pairs = fixed_pairs(clips, 6)
    refs, labels = pairs.sources[:, 0], pairs.labels[:, 0]
    examples = example_clips(clips, refs, labels)
    for p in range(6):
        for n in range(2):
            same_class = (clips.labels == labels[p, n]).nonzero().flatten()
            assert any(torch.equal(examples[p, n], clips.waves[i]) for i in same_class)
            assert not torch.equal(examples[p, n], refs[p, n])


def test_text_and_audio_queries_are_scored_on_the_same_mixtures(smoke_separator, smoke_corpus):
    from wsas.lab.query_kinds import compare

    row = compare(smoke_separator, smoke_corpus, n_pairs=6, batch=4)
    text, audio, difference = (
        row[k] for k in ("text_si_sdr", "audio_si_sdr", "audio_minus_text_si_sdr")
    )
    assert difference[0] == pytest.approx(audio[0] - text[0], abs=1e-6)
    assert difference[1] < difference[0] < difference[2]
