"""The tokenizers: none without the ``exact`` extra (then every count is an estimate), and
with it OpenAI's own encodings, counted offline, in pieces that do not change the count.

The tests marked ``exact`` need ``pip install 'ferro-guardrail-max-tokens[exact]'``; they
are skipped without it, and the rest of the package's tests run the same code with a
stand-in tokenizer."""

import gzip
import hashlib
import random
import sys
from importlib import resources

import pytest
from ferro import ChatRequest, RejectedError, RequestContext
from ferro_guardrail_max_tokens import MaxTokens, Options
from ferro_guardrail_max_tokens.tokens import ENCODINGS, PIECE, count_tokens, installed_encodings

#: The SHA-256 of the encoding files as OpenAI publishes them (and tiktoken checks them).
PUBLISHED = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
GREETING = "Привет, как дела?"  # 6 tokens in o200k_base, 8 in cl100k_base


@pytest.fixture
def exact():
    pytest.importorskip("bpe_openai", reason="needs the exact extra")
    return installed_encodings()


def chat(text, model):
    return RequestContext(ChatRequest({"model": model, "messages": [
        {"role": "user", "content": text}]}), "rid")


async def test_without_the_extra_there_is_no_tokenizer_and_tokens_are_estimated(monkeypatch):
    monkeypatch.setitem(sys.modules, "bpe_openai", None)  # as if it were not installed
    encodings = installed_encodings.__wrapped__()
    assert encodings == {}
    plugin = MaxTokens(Options(max_input_tokens=10), encodings=encodings)
    with pytest.raises(RejectedError) as info:
        await plugin.before_request(chat("x" * 40, "gpt-4o"))
    assert info.value.message == "estimated input tokens 17 exceeds limit of 10"


def test_the_extra_ships_openais_encoding_files(exact):
    assert set(exact) == set(ENCODINGS)
    data = resources.files("bpe_openai.data")
    for name, digest in PUBLISHED.items():
        unpacked = gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes())
        assert hashlib.sha256(unpacked).hexdigest() == digest


def test_the_extra_counts_as_openais_tokenizer_does(exact):
    assert len(exact["o200k_base"].encode_ordinary("hello world")) == 2
    assert len(exact["o200k_base"].encode_ordinary(GREETING)) == 6
    assert len(exact["cl100k_base"].encode_ordinary(GREETING)) == 8
    # a special token's text is text, not the special token
    assert len(exact["o200k_base"].encode_ordinary("<|endoftext|>")) > 1


def long_text(seed):
    rng = random.Random(seed)
    words = ["the", "gateway", "Ferro", "naïve", "café", "日本語", "🎉", "don't", "it's",
             "x=y+1;", "https://example.com/a/b", "12345678", "  ", "\n", "\n\n", "\t",
             "—", "(", ")", ".", ",", "'ll", "ÉCOLE", "Straße"]
    return " ".join(rng.choice(words) for _ in range(12000))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_counting_in_pieces_gives_the_whole_texts_count(exact, seed):
    text = long_text(seed)
    assert len(text) > 4 * PIECE
    for encoding in exact.values():
        assert await count_tokens(encoding, [text], budget=10**9) == \
            len(encoding.encode_ordinary(text))


async def test_an_openai_model_is_counted_exactly(exact):
    plugin = MaxTokens(Options(max_input_tokens=12))  # the installed tokenizers
    with pytest.raises(RejectedError) as info:
        await plugin.before_request(chat(GREETING, "gpt-4o"))
    assert info.value.message == "input of at least 13 tokens (o200k_base) exceeds limit of 12"
    await MaxTokens(Options(max_input_tokens=13)).before_request(chat(GREETING, "gpt-4o"))
    with pytest.raises(RejectedError) as info:
        await MaxTokens(Options(max_input_tokens=14)).before_request(chat(GREETING, "gpt-4"))
    assert info.value.message == "input of at least 15 tokens (cl100k_base) exceeds limit of 14"
