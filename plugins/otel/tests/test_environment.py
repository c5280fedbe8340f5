"""The configuration, from the standard OpenTelemetry environment variables."""

import pytest
from ferro import __version__
from ferro_otel.environment import endpoint_variable, resource

BASE = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"


@pytest.mark.parametrize(("env", "variable"), [
    ({}, None),
    ({BASE: "http://127.0.0.1:4318"}, BASE),
    ({TRACES: "http://127.0.0.1:4318/v1/traces"}, TRACES),
    ({BASE: "http://127.0.0.1:4318", TRACES: "http://127.0.0.1:4318/v1/traces"}, TRACES),
    ({BASE: "  "}, None),
    ({BASE: "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "TRUE"}, None),
    ({BASE: "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "false"}, BASE),
])
def test_tracing_is_on_when_an_endpoint_is_set(env, variable):
    assert endpoint_variable(env) == variable


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_service_is_the_gateway_by_default(clean_env):
    attributes = resource().attributes
    assert attributes["service.name"] == "ferro-gateway"
    assert attributes["service.version"] == __version__
    assert attributes["telemetry.sdk.name"] == "opentelemetry"


def test_the_environment_names_the_service(clean_env):
    clean_env.setenv("OTEL_SERVICE_NAME", "gateway-eu")
    clean_env.setenv("OTEL_RESOURCE_ATTRIBUTES",
                     "deployment.environment.name=prod,service.version=7")
    attributes = resource().attributes
    assert attributes["service.name"] == "gateway-eu"
    assert attributes["service.version"] == "7"
    assert attributes["deployment.environment.name"] == "prod"


def test_resource_attributes_alone_may_name_the_service(clean_env):
    clean_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=edge")
    assert resource().attributes["service.name"] == "edge"
