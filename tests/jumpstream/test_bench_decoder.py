"""The decoder measurement's pieces: the three readers agree on what "the same texts" means,
and the relay's decoder is reached through one module (relay_code.py)."""

from __future__ import annotations

from jumpstream.bench.decoder import (
    decoder_peak_kib,
    naive_texts,
    payload_parts,
    sdk_texts,
    tgi_events,
)
from jumpstream.bench.relay_code import TokenTexts, decoder_texts


def test_every_reader_gets_the_same_texts_from_cut_parts() -> None:
    events = tgi_events(40)
    parts = payload_parts(events)
    assert len(parts) > len(events)  # some events were cut in two
    assert b"".join(parts) == b"".join(events)
    texts, tokens = decoder_texts(parts)
    assert tokens == 41  # the answer and the EOS token
    assert texts == sdk_texts(parts) == naive_texts(parts)
    assert "".join(texts).strip()


def test_decoder_memory_is_measured_in_kib() -> None:
    assert 0 < decoder_peak_kib(50) < 1024


def test_token_texts_reads_part_by_part_what_decoder_texts_reads_at_once() -> None:
    parts = payload_parts(tgi_events(25))
    reader = TokenTexts()
    completed = [reader.feed(part) for part in parts]
    reader.close()
    assert (reader.texts, reader.tokens) == decoder_texts(parts)
    # A part says whether it completed text: the first part holds a whole token event, the
    # second half of a cut event completes one, and its first half does not.
    assert completed[0] is True
    cut = payload_parts(tgi_events(10))
    halves = TokenTexts()
    assert [halves.feed(part) for part in cut[9:11]] == [False, True]
