"""The official openai client against a running gateway (`make run` serves one)."""

from openai import OpenAI

client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="unused-unless-server.api_keys")

reply = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}])
print(reply.choices[0].message.content, reply.usage)

stream = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Count to five"}],
    stream=True, stream_options={"include_usage": True})
for chunk in stream:
    for choice in chunk.choices:
        print(choice.delta.content or "", end="", flush=True)
    if chunk.usage:
        print("\n", chunk.usage)
