import json
import logging

import pytest
from ferro.logs import JSONFormatter, redact


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer sk-live-123", "sk-live-123"),
    ("headers={'x-api-key': 'ant-456'}", "ant-456"),
    ('{"api_key": "gsk_789"}', "gsk_789"),
    ("GET https://host/v1beta/models?key=AIzaSecret&alt=sse", "AIzaSecret"),
    ("api-key=azure-000", "azure-000"),
])
def test_secrets_never_reach_the_log(text, secret):
    cleaned = redact(text)
    assert secret not in cleaned
    assert "[REDACTED]" in cleaned


def test_json_lines_carry_level_logger_and_redacted_message():
    record = logging.LogRecord("ferro.app", logging.WARNING, __file__, 1,
                               "upstream said %s", ("Authorization: Bearer sk-x",), None)
    line = json.loads(JSONFormatter().format(record))
    assert line["level"] == "warning"
    assert line["logger"] == "ferro.app"
    assert "sk-x" not in line["msg"]
    assert line["time"].endswith("Z")
