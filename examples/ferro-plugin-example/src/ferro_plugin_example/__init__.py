"""An example plugin: ``system-prompt`` adds a system message to every request.

    plugins:
      - name: system-prompt
        stage: before_request
        config: {text: "Answer in French.", replace: false}
"""

from __future__ import annotations

import attrs
from ferro import CHAT, RequestContext, hookimpl


class SystemPrompt:
    """Puts ``text`` first as a system message. With ``replace: true`` it also drops the
    client's own system and developer messages; otherwise it keeps them after its own."""

    @attrs.define
    class Options:
        text: str = attrs.field(validator=attrs.validators.min_len(1))
        replace: bool = False

    def __init__(self, options: Options) -> None:
        self.message = {"role": "system", "content": options.text}
        self.replace = options.replace

    async def before_request(self, ctx: RequestContext) -> None:
        if ctx.operation is not CHAT:  # embeddings and legacy completions have no messages
            return
        messages = ctx.request.messages
        if self.replace:
            messages = [m for m in messages if m.get("role") not in ("system", "developer")]
        ctx.request.body["messages"] = [self.message, *messages]


@hookimpl
def register_plugins(register):
    register("system-prompt", SystemPrompt)
