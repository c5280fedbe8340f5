"""The exact text prompt rules see, per operation and scope."""

import pytest
from ferro import ChatRequest, CompletionsRequest, EmbeddingsRequest
from ferro_strategy_conditional.prompt import PromptText

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "First question"},
    {"role": "assistant", "content": None,
     "tool_calls": [{"id": "c1", "type": "function",
                     "function": {"name": "lookup", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "42"},
    {"role": "user", "content": [{"type": "text", "text": "Second"},
                                 {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                                 {"type": "text", "text": "question"}]},
    {"role": "assistant", "content": "An answer"},
]


def chat_text(messages, scope):
    return PromptText(ChatRequest({"model": "m", "messages": messages})).text(scope)


def test_last_user_is_the_last_user_message_with_its_text_parts_one_per_line():
    assert chat_text(CONVERSATION, "last_user") == "Second\nquestion"


def test_all_is_every_messages_text_one_per_line():
    assert chat_text(CONVERSATION, "all") == (
        "You are terse.\nFirst question\n42\nSecond\nquestion\nAn answer")


def test_a_conversation_without_a_user_message_has_no_last_user_text():
    assert chat_text([{"role": "system", "content": "Be kind."}], "last_user") == ""


def test_folded_text_is_the_text_case_folded():
    prompt = PromptText(ChatRequest({"model": "m",
                                     "messages": [{"role": "user", "content": "Straße WEG"}]}))
    assert prompt.folded("last_user") == "strasse weg"
    assert prompt.text("last_user") == "Straße WEG"


@pytest.mark.parametrize(("prompt", "text"), [
    ("Once upon a time", "Once upon a time"),
    (["first prompt", "second prompt"], "first prompt\nsecond prompt"),
    ([101, 102], ""),
    ([[101], [102]], ""),
])
@pytest.mark.parametrize("scope", ["last_user", "all"])
def test_a_completions_prompt_is_one_text_in_either_scope(prompt, text, scope):
    request = CompletionsRequest({"model": "m", "prompt": prompt})
    assert PromptText(request).text(scope) == text


@pytest.mark.parametrize(("value", "text"), [
    ("a sentence", "a sentence"),
    (["one", "two"], "one\ntwo"),
    ([3, 4, 5], ""),
])
@pytest.mark.parametrize("scope", ["last_user", "all"])
def test_an_embeddings_input_is_one_text_in_either_scope(value, text, scope):
    request = EmbeddingsRequest({"model": "m", "input": value})
    assert PromptText(request).text(scope) == text
