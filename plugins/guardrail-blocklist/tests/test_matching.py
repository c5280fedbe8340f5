"""Options and matching: whole words and substrings, case, phrases, patterns, which entry a
hit names, the texts of requests and answers, and the stream window."""

import pytest
from ferro import ChatChunk, ChatRequest, CompletionsRequest, EmbeddingsRequest, RejectedError
from ferro import RequestContext as Context
from ferro.config import ConfigSource, build_options
from ferro_guardrail_blocklist import PATTERN_WINDOW, Blocklist, Hit, Matcher, WordFilter
from ferro_guardrail_blocklist.texts import answer_texts, chunk_texts, request_texts


def matcher(cls=Blocklist, **options):
    return cls(build_options(cls, options, ConfigSource("<test>"), ())).matcher


@pytest.mark.parametrize(("text", "whole_word", "substring"), [
    ("my password is", True, True),
    ("Password: x", True, True),
    ("passwords", False, True),
    ("mypassword", False, True),
    ("password_hash", False, True),   # _ is a word character
    ("(password)", True, True),
    ("pass word", False, False),
])
def test_whole_word_and_substring(text, whole_word, substring):
    words = {"blocked_words": ["password"]}
    assert (matcher(**words).find(text) is not None) is whole_word
    assert (matcher(**words, match="substring").find(text) is not None) is substring


def test_blocklist_matches_whole_words_and_word_filter_substrings_by_default():
    assert matcher(blocked_words=["pass"]).find("password") is None
    assert matcher(WordFilter, blocked_words=["pass"]).find("password") == Hit("word", "pass")
    assert matcher(WordFilter, blocked_words=["pass"], match="whole_word").find(
        "password") is None


def test_case_insensitive_by_default_and_exact_when_asked():
    assert matcher(blocked_words=["Secret"]).find("a SECRET plan") == Hit("word", "Secret")
    strict = matcher(blocked_words=["Secret"], case_sensitive=True)
    assert strict.find("a SECRET plan") is None
    assert strict.find("a Secret plan") == Hit("word", "Secret")


def test_a_phrase_matches_with_its_spacing_and_the_hit_names_the_longest_entry():
    m = matcher(blocked_words=["secret", "secret code", "code"])
    assert m.find("the secret code is") == Hit("word", "secret code")
    assert m.find("the secret  code") == Hit("word", "secret")
    assert matcher(blocked_words=["secret code"]).find("secret\ncode") is None


def test_words_are_literal_text_not_regular_expressions():
    m = matcher(blocked_words=["a.b", "c++"])
    assert m.find("axb") is None
    assert m.find("use a.b here") == Hit("word", "a.b")
    assert m.find("in c++ code") == Hit("word", "c++")


def test_patterns_are_searched_after_words_and_follow_case_sensitive():
    m = matcher(blocked_words=["secret"], patterns=[r"\b\d{4}-\d{4}\b", r"key-[a-z]+"])
    assert m.find("card 1234-5678") == Hit("pattern", r"\b\d{4}-\d{4}\b")
    assert m.find("KEY-ABC") == Hit("pattern", "key-[a-z]+")
    assert m.find("secret 1234-5678") == Hit("word", "secret")
    assert matcher(patterns=["key-[a-z]+"], case_sensitive=True).find("KEY-ABC") is None
    assert m.find("nothing here") is None


def test_a_pattern_keeps_its_own_groups_and_backreferences():
    m = matcher(blocked_words=["x"], patterns=[r"(\w)\1\1"])
    assert m.find("zzz") == Hit("pattern", r"(\w)\1\1")
    assert m.find("zaz") is None


def test_hit_reason_quotes_the_configured_entry():
    assert Hit("word", "password").reason() == 'blocked word detected: "password"'
    assert Hit("pattern", "a+").reason(" in the response") == \
        'blocked pattern detected in the response: "a+"'


def test_no_words_and_no_patterns_is_a_no_op():
    m = matcher()
    assert not m
    assert m.find("anything") is None


@pytest.mark.parametrize(("options", "where", "says"), [
    ({"patterns": ["ok", "(unclosed"]}, "patterns", "entry 1 ('(unclosed') is not a valid "
                                                    "regular expression"),
    ({"patterns": ["a*"]}, "patterns", "matches the empty text"),
    ({"blocked_words": ["fine", " "]}, "blocked_words", "entry 1 is blank"),
    ({"match": "prefix"}, "match", "must be one of whole_word, substring (got 'prefix')"),
    ({"blocked_words": "password"}, "blocked_words", "expected a list"),
    ({"words": ["x"]}, "words", "unknown key 'words'"),
])
def test_bad_options_are_located_config_errors(ferro_app, options, where, says):
    from ferro import ConfigError

    with pytest.raises(ConfigError) as info:
        ferro_app({"providers": {"echo": {"type": "echo"}}, "targets": [{"virtual_key": "echo"}],
                   "plugins": [{"name": "blocklist", "config": options}]})
    assert f"plugins[0].config.{where}: " in info.value.message
    assert says in info.value.message


def test_texts_of_a_chat_request():
    request = ChatRequest({"model": "m", "messages": [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": [{"type": "text", "text": "first"},
                                     {"type": "image_url", "image_url": {"url": "data:x"}},
                                     {"type": "text", "text": "second"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "lookup", "arguments": '{"q": "args"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "tool result"},
    ]})
    assert list(request_texts(request)) == ["be nice", "first\nsecond", '{"q": "args"}',
                                            "tool result"]


@pytest.mark.parametrize(("request_", "expected"), [
    (CompletionsRequest({"model": "m", "prompt": "one prompt"}), ["one prompt"]),
    (CompletionsRequest({"model": "m", "prompt": ["a", "b"]}), ["a", "b"]),
    (CompletionsRequest({"model": "m", "prompt": [1, 2, 3]}), []),
    (EmbeddingsRequest({"model": "m", "input": "text"}), ["text"]),
    (EmbeddingsRequest({"model": "m", "input": ["x", "y"]}), ["x", "y"]),
    (EmbeddingsRequest({"model": "m", "input": [[1, 2], [3]]}), []),
])
def test_texts_of_completions_and_embeddings_requests(request_, expected):
    assert list(request_texts(request_)) == expected


def test_texts_of_an_answer():
    chat = {"choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hello"}},
        {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]}
    assert list(answer_texts(chat)) == ["hello", "{}"]
    assert list(answer_texts({"choices": [{"index": 0, "text": "legacy"}]})) == ["legacy"]
    assert list(answer_texts({"object": "list", "data": [{"embedding": [0.1]}]})) == []


def test_texts_of_a_chunk_are_keyed_by_choice_and_tool_call():
    choices = [
        {"index": 0, "delta": {"content": "a"}},
        {"index": 1, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "{\"x\""}},
            {"index": 1, "function": {"name": "g", "arguments": ""}}]}},
        {"index": 2, "text": "legacy", "finish_reason": None},
        {"index": 3, "delta": {}, "finish_reason": "stop"},
    ]
    assert list(chunk_texts(choices)) == [((0, -1), "a"), ((1, 0), "{\"x\""),
                                          ((2, -1), "legacy")]


def context(**body):
    return Context(ChatRequest({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                "stream": True, **body}), "rid")


def content_chunk(*texts):
    return ChatChunk({"object": "chat.completion.chunk", "choices": [
        {"index": i, "delta": {"content": text}} for i, text in enumerate(texts)]})


async def feed(plugin, ctx, *chunks):
    sent = []
    for chunk in chunks:
        sent.append(await plugin.on_chunk(ctx, chunk))
    return sent


def blocklist(**options):
    return Blocklist(build_options(Blocklist, options, ConfigSource("<test>"), ()))


@pytest.mark.parametrize("pieces", [
    ["the sec", "ret code is 42"],
    ["the s", "e", "c", "r", "e", "t c", "o", "de"],
    ["the secret", " ", "code"],
])
async def test_a_phrase_split_across_chunks_is_caught_in_the_chunk_that_completes_it(pieces):
    plugin, ctx = blocklist(blocked_words=["secret code"]), context()
    chunks = [content_chunk(p) for p in pieces]
    assert await feed(plugin, ctx, *chunks[:-1]) == chunks[:-1]
    with pytest.raises(RejectedError) as info:
        await plugin.on_chunk(ctx, chunks[-1])
    assert info.value.code == "content_blocked"
    assert info.value.message == 'blocked word detected in the response: "secret code"'


async def test_a_word_inside_a_longer_one_is_not_found_again_when_the_tail_starts_at_it():
    plugin, ctx = blocklist(blocked_words=["code"]), context()
    # after "zip" + "code" the tail is "code": the "p" before it is gone, but the hit
    # that tail alone would give ends before the new text, so it does not count
    await feed(plugin, ctx, content_chunk("a zip"), content_chunk("code"),
               content_chunk(" and a barcode"), content_chunk("s"))
    with pytest.raises(RejectedError):
        await plugin.on_chunk(ctx, content_chunk(" code"))


async def test_choices_and_tool_calls_keep_separate_windows():
    plugin, ctx = blocklist(blocked_words=["secret code"]), context()
    # "secret " on choice 0 and "code" on choice 1 are two answers, not one phrase
    await feed(plugin, ctx, content_chunk("secret ", ""), content_chunk("", "code"))
    calls = ChatChunk({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": "{\"a\": \"secret "}},
        {"index": 1, "function": {"arguments": "code"}}]}}]})
    assert await plugin.on_chunk(ctx, calls) is calls
    with pytest.raises(RejectedError):
        await plugin.on_chunk(ctx, ChatChunk({"choices": [{"index": 0, "delta": {
            "tool_calls": [{"index": 0, "function": {"arguments": "code\"}"}}]}}]}))


async def test_legacy_completion_chunks_are_searched():
    plugin, ctx = blocklist(blocked_words=["secret code"]), context()
    await plugin.on_chunk(ctx, ChatChunk({"object": "text_completion",
                                          "choices": [{"index": 0, "text": "a secret"}]}))
    with pytest.raises(RejectedError):
        await plugin.on_chunk(ctx, ChatChunk({"object": "text_completion",
                                              "choices": [{"index": 0, "text": " code"}]}))


async def test_the_stream_window_stays_as_long_as_the_longest_phrase():
    plugin, ctx = blocklist(blocked_words=["secret code", "x"]), context()
    for i in range(200):
        await plugin.on_chunk(ctx, content_chunk(f"word number {i} "))
    (tail,) = ctx.state[plugin].values()
    assert tail == "number 199 "[-len("secret code"):]


async def test_patterns_across_chunks_within_the_pattern_window():
    plugin, ctx = blocklist(patterns=[r"\d{4}-\d{4}-\d{4}-\d{4}"]), context()
    assert plugin.matcher.window == PATTERN_WINDOW
    await feed(plugin, ctx, content_chunk("card 1234-56"), content_chunk("78-9012"))
    with pytest.raises(RejectedError) as info:
        await plugin.on_chunk(ctx, content_chunk("-3456 ok"))
    assert info.value.message == \
        r'blocked pattern detected in the response: "\d{4}-\d{4}-\d{4}-\d{4}"'


async def test_chunks_without_text_pass_untouched():
    plugin, ctx = blocklist(blocked_words=["secret"]), context()
    usage = ChatChunk({"choices": [], "usage": {"total_tokens": 3}})
    raw = ChatChunk(raw=b'{"choices":[{"index":0,"delta":{"role":"assistant"}}]}')
    assert await feed(plugin, ctx, usage, raw) == [usage, raw]


def test_matcher_window_covers_the_longest_word_or_the_pattern_window():
    from ferro_guardrail_blocklist import Options

    assert Matcher(Options(blocked_words=["ab", "abcdef"])).window == 6
    assert Matcher(Options(blocked_words=["ab"], patterns=["x+"])).window == PATTERN_WINDOW
