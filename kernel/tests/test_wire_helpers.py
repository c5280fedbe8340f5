"""The OpenAI-format helpers translations and plugins share."""

from ferro import wire


def test_message_texts_reads_content_parts_and_tool_arguments_each_on_its_own():
    message = {"role": "assistant", "content": [
        {"type": "text", "text": "first"}, {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": "second"}],
        "tool_calls": [{"id": "c", "type": "function",
                        "function": {"name": "f", "arguments": '{"q": 1}'}},
                       {"id": "d", "type": "function", "function": {"name": "g"}}, "junk"]}
    assert list(wire.message_texts(message)) == ["first\nsecond", '{"q": 1}']


def test_message_texts_leaves_out_empty_and_missing_text():
    assert list(wire.message_texts({"role": "user", "content": ""})) == []
    assert list(wire.message_texts({"role": "assistant", "content": None})) == []
    assert list(wire.message_texts({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "x"}}]})) == []
    assert list(wire.message_texts({"role": "user", "content": "hi"})) == ["hi"]
