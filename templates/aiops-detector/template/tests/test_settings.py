"""Settings from the environment: the answers by default, a bad value named, the token hidden."""

from __future__ import annotations

import pytest

from app.settings import Settings, SettingsError


def test_the_environment_overrides_the_answers() -> None:
    """Every variable the Deployment sets is read."""
    settings = Settings.from_env(
        {
            "PROMETHEUS_URL": "http://prometheus:9090/",
            "PORTAL_URL": "https://portal.example.com",
            "DETECT_INTERVAL_SECONDS": "120",
            "REMEDIATION_FILE": "/etc/aiops/remediation.yaml",
            "FALSE_ALARM_RATE": "0.01",
            "MODEL_DIR": "/models",
        }
    )
    assert settings.prometheus_url == "http://prometheus:9090"  # no trailing slash
    assert settings.portal_url == "https://portal.example.com"
    assert settings.detect_interval_seconds == 120
    assert str(settings.remediation_file) == "/etc/aiops/remediation.yaml"
    assert settings.false_alarm_rate == 0.01 and str(settings.model_dir) == "/models"
    assert Settings.from_env({}) == Settings()
    # Run from the service's folder, the rules are the reviewed file in deploy/base.
    assert str(Settings().remediation_file) == "deploy/base/remediation.yaml"


def test_the_portal_token_is_read_but_never_shown() -> None:
    """It comes from the Secret the Deployment references; logs and reprs never carry it."""
    settings = Settings.from_env({"PORTAL_TOKEN": "s3cret-token"})
    assert settings.portal_token == "s3cret-token"
    assert "s3cret-token" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROMETHEUS_URL": "prometheus:9090"}, "PROMETHEUS_URL must be an http(s) URL"),
        ({"PORTAL_URL": "ftp://portal"}, "PORTAL_URL must be an http(s) URL"),
        ({"BACKGROUND_DETECT": "maybe"}, "BACKGROUND_DETECT must be true or false"),
        ({"FALSE_ALARM_RATE": "0.5"}, "FALSE_ALARM_RATE must be between"),
        ({"DETECT_INTERVAL_SECONDS": "soon"}, "DETECT_INTERVAL_SECONDS must be a number"),
    ],
)
def test_a_bad_value_stops_the_service_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    """The service does not start on a value it cannot use."""
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


def test_the_model_registry_and_the_pin_are_read() -> None:
    """MODEL_URI wins over MODEL_VERSION; the registered name is the service's plus -detector."""
    env = {"MLFLOW_TRACKING_URI": "http://mlflow.mlflow.svc.cluster.local:5000/"}
    settings = Settings.from_env({**env, "MODEL_VERSION": "3", "GIT_COMMIT": "abc123"})
    assert settings.mlflow_tracking_uri == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert (settings.model_version, settings.pinned, settings.git_commit) == ("3", True, "abc123")
    name = f"{Settings().service_name}-detector"
    assert settings.registered_model == name
    uri = {"MODEL_URI": f"models:/{name}/7", "MODEL_VERSION": "3"}
    assert Settings.from_env({**env, **uri}).model_version == "7"
    unpinned = Settings.from_env({**env, "MODEL_VERSION": ""})
    assert (unpinned.pinned, unpinned.git_commit) == (False, "unknown")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODEL_VERSION": "3"}, "MODEL_VERSION pins a registry version: set MLFLOW_TRACKING_URI"),
        ({"MLFLOW_TRACKING_URI": "http://m:5000", "MODEL_VERSION": "v3"}, "MODEL_VERSION must"),
        ({"MLFLOW_TRACKING_URI": "http://m:5000", "MODEL_VERSION": "0"}, "MODEL_VERSION must"),
        (
            {"MLFLOW_TRACKING_URI": "http://m:5000", "MODEL_URI": "runs:/abc/model"},
            "MODEL_URI must",
        ),
        (
            {"MLFLOW_TRACKING_URI": "http://m:5000", "MODEL_URI": "models:/other-detector/2"},
            "MODEL_URI names 'other-detector'",
        ),
        ({"MLFLOW_TRACKING_URI": "mlflow:5000"}, "MLFLOW_TRACKING_URI must be an http(s) URL"),
    ],
)
def test_a_pin_the_service_cannot_honour_stops_it(env: dict[str, str], message: str) -> None:
    """Never another model, never a guess: the service does not start."""
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)
