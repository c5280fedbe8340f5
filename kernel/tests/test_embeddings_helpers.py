"""The embeddings helpers providers share: batches in order, a batch's own error, merging,
base64 as OpenAI encodes it."""

import asyncio
import base64
import struct

import pytest
from ferro import EmbeddingsRequest, UpstreamError, embeddings


async def test_batches_come_back_in_order_whatever_finishes_first():
    async def call(batch):
        await asyncio.sleep(0.01 * (5 - batch[0]))  # later batches finish first
        return batch

    assert await embeddings.in_batches(list(range(10)), 2, call) == [
        [0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


async def test_a_failed_batch_raises_its_own_error():
    async def call(batch):
        if batch[0] == 2:
            raise UpstreamError("slow down", status=429, headers={"Retry-After": "3"})
        await asyncio.sleep(0.05)
        return batch

    with pytest.raises(UpstreamError) as info:
        await embeddings.in_batches(list(range(6)), 2, call)
    assert info.value.status == 429 and info.value.headers == {"Retry-After": "3"}


def test_merged_answers_are_reindexed_and_usage_summed():
    merged = embeddings.merge_embeddings([
        {"object": "list", "model": "m", "data": [{"index": 1, "embedding": [2.0]},
                                                  {"index": 0, "embedding": [1.0]}],
         "usage": {"prompt_tokens": 3, "total_tokens": 3}},
        {"object": "list", "model": "m", "data": [{"index": 0, "embedding": [3.0]}],
         "usage": {"prompt_tokens": 2, "total_tokens": 2}},
    ])
    assert [(d["index"], d["embedding"]) for d in merged["data"]] == [
        (0, [1.0]), (1, [2.0]), (2, [3.0])]
    assert merged["usage"] == {"prompt_tokens": 5, "total_tokens": 5}


def test_base64_is_little_endian_float32():
    request = EmbeddingsRequest({"model": "m", "input": ["a"], "encoding_format": "base64"})
    answer = embeddings.embeddings_response(request, [[0.5, -1.25]], provider="p",
                                            prompt_tokens=1)
    raw = base64.b64decode(answer.body["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (0.5, -1.25)
    assert answer.body["usage"] == {"prompt_tokens": 1, "total_tokens": 1}


def test_float_answers_are_encoded_when_base64_was_asked_for():
    answer = {"data": [{"index": 0, "embedding": "AAAAAA=="}, {"index": 1, "embedding": [1.0]}]}
    embeddings.encode_as_asked(EmbeddingsRequest({"model": "m", "input": "x"}), answer)
    assert answer["data"][1]["embedding"] == [1.0], "floats stay floats unless asked"
    embeddings.encode_as_asked(EmbeddingsRequest(
        {"model": "m", "input": "x", "encoding_format": "base64"}), answer)
    assert answer["data"] == [{"index": 0, "embedding": "AAAAAA=="},
                              {"index": 1, "embedding": "AACAPw=="}]
