"""The one settings object: every section keeps its variables, the README lists them all, and
stages are built from it (model drafts in tasking included)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from labeltrail.config import Settings, variables
from labeltrail.events import TaskAssigned, TaskCreated
from labeltrail.folds.iaa import IaaConfig
from labeltrail.folds.reliability import ReliabilityConfig
from labeltrail.folds.tasking import TaskingFold
from labeltrail.sim import Platform, PlatformConfig
from labeltrail.sim.demo import replay_settings
from labeltrail.stages import make
from tests.folds.test_tasking import POS, _scored, populated

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_rows() -> list[tuple[str, str, str]]:
    """(variable, setting, default) of each row of README's settings table."""
    lines = README.read_text().splitlines()
    start = lines.index("| variable | setting | default | meaning |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append((cells[0].strip("`"), cells[1].strip("`"), cells[2].strip("`")))
    return rows


def test_the_readme_table_names_every_variable_and_only_those() -> None:
    read = variables()
    rows = _readme_rows()
    assert [v for v, _, _ in rows if v not in read] == []  # nothing the settings do not read
    assert {v: s for v, s, _ in rows} == {v: read[v] for v, _, _ in rows}
    assert sorted(set(read.values()) - {s for _, s, _ in rows}) == []  # every setting listed
    assert len(rows) == len({v for v, _, _ in rows})


def _field(path: str) -> tuple[type[BaseSettings], str]:
    model: type[BaseSettings] = Settings
    *sections, name = path.split(".")
    for section in sections:
        model = model.model_fields[section].annotation  # type: ignore[assignment]
    return model, name


def test_the_readme_table_shows_each_default() -> None:
    for variable, path, shown in _readme_rows():
        model, name = _field(path)
        info = model.model_fields[name]
        if info.default_factory is not None or not shown:
            continue
        default = info.default
        match default:
            case None:
                assert shown == "unset", variable
            case bool():
                assert shown == str(default).lower(), variable
            case int() | float():
                assert float(shown) == default, variable
            case dt.timedelta():
                assert default == dt.timedelta(days=int(shown.removeprefix("P").rstrip("D")))
            case "":
                assert shown == "empty", variable
            case _:
                assert shown == str(default), variable


@pytest.mark.parametrize(
    ("variable", "value", "path", "expected"),
    [
        ("LABELTRAIL_TOPIC_PREFIX", "lt-env", "topic_prefix", "lt-env"),
        ("LABELTRAIL_AGREEMENT_THRESHOLD", "0.7", "agreement_threshold", 0.7),
        ("LABELTRAIL_REDUNDANCY", "5", "tasking.redundancy", 5),
        ("LABELTRAIL_PRELABELS", "true", "tasking.prelabels", True),
        ("LABELTRAIL_AUTO_ACCEPT_THRESHOLD", "0.97", "labels.auto_accept_threshold", 0.97),
        ("LABELTRAIL_RELIABILITY_REFIT_ON_DRAIN", "1", "reliability.refit_on_drain", True),
        ("LABELTRAIL_RELIABILITY_SUSPEND_FLOOR", "0.6", "reliability.suspend_floor", 0.6),
        ("LABELTRAIL_IAA_ALLOWED_LATENESS", "PT2H", "iaa.allowed_lateness", dt.timedelta(hours=2)),
        ("LABELTRAIL_LEARNING_MODELS_DIR", "/m", "learning.models_dir", Path("/m")),
        ("LABELTRAIL_LEARNING_GATE_TOLERANCE", "0.05", "learning.gate_tolerance", 0.05),
        ("LABELTRAIL_TRAINER_EPOCHS", "8", "trainer.epochs", 8),
        ("LABELTRAIL_ANNOTATE_PORT", "9191", "annotate.port", 9191),
    ],
)
def test_each_section_reads_its_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, path: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    got: object = Settings()
    for part in path.split("."):
        got = getattr(got, part)
    assert got == expected


def test_section_values_are_validated_and_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELTRAIL_TRAINER_EVERY_LABELS", "-1")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.delenv("LABELTRAIL_TRAINER_EVERY_LABELS")
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.tasking.redundancy = 9  # type: ignore[misc]


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELTRAIL_KAFKA_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("LABELTRAIL_CLICKHOUSE_PASSWORD", "hunter3")
    settings = Settings()
    assert isinstance(settings.clickhouse_password, SecretStr)
    assert "hunter" not in repr(settings) and "hunter" not in settings.model_dump_json()
    assert settings.kafka_config()["sasl.password"] == "hunter2"


def test_the_tasking_stage_sends_model_drafts_when_the_environment_enables_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LABELTRAIL_PRELABELS", "true")
    fold = make("tasking", Settings())
    assert isinstance(fold, TaskingFold)
    out = populated(fold).apply(_scored("c1"), POS)
    assert isinstance(out[0], TaskCreated)
    assert (out[0].prelabel, out[0].prelabel_confidence) == ("harassment", 0.41)
    assigned = [o for o in out if isinstance(o, TaskAssigned)]
    assert len(assigned) == 3 and {o.prelabel for o in assigned} == {"harassment"}

    monkeypatch.delenv("LABELTRAIL_PRELABELS")
    plain = populated(make("tasking", Settings())).apply(_scored("c1"), POS)  # type: ignore[arg-type]
    assert isinstance(plain[0], TaskCreated) and plain[0].prelabel is None


def test_the_demo_changes_settings_not_folds() -> None:
    """The demo's replay is the registry's folds over updated settings, as it built them."""
    platform = Platform(PlatformConfig.sized(60, seed=3, days=5))
    settings = Settings()
    replay = replay_settings(settings, platform)
    tasking = make("tasking", replay).config  # type: ignore[attr-defined]
    assert tasking.min_crowd_pool == len(platform.crowd_ids)
    assert tasking.gold_set_size == platform.config.n_gold
    assert make("reliability", replay).config == ReliabilityConfig(refit_on_drain=True)  # type: ignore[attr-defined]
    assert make("iaa", replay).config == IaaConfig(  # type: ignore[attr-defined]
        allowed_lateness=dt.timedelta(days=7), close_on_drain=True
    )
    assert settings.tasking.min_crowd_pool == 0  # the original is untouched
    assert make("iaa", settings).config.close_on_drain is False  # type: ignore[attr-defined]


def test_kafka_security_reaches_librdkafka_and_refuses_half_configurations(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LABELTRAIL_KAFKA_SECURITY_PROTOCOL", "ssl")
    monkeypatch.setenv("LABELTRAIL_KAFKA_SSL_CA_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("LABELTRAIL_KAFKA_SSL_CERT_FILE", str(tmp_path / "me.pem"))
    monkeypatch.setenv("LABELTRAIL_KAFKA_SSL_KEY_FILE", str(tmp_path / "me.key"))
    monkeypatch.setenv("LABELTRAIL_KAFKA_SSL_KEY_PASSWORD", "hunter4")
    settings = Settings()
    assert "hunter4" not in repr(settings) and "hunter4" not in settings.model_dump_json()
    conf = settings.kafka_config()
    assert conf["security.protocol"] == "SSL"
    assert conf["ssl.ca.location"] == str(tmp_path / "ca.pem")
    assert conf["ssl.certificate.location"] == str(tmp_path / "me.pem")
    assert conf["ssl.key.location"] == str(tmp_path / "me.key")
    assert conf["ssl.key.password"] == "hunter4"
    monkeypatch.delenv("LABELTRAIL_KAFKA_SSL_KEY_FILE")
    with pytest.raises(ValidationError, match="both LABELTRAIL_KAFKA_SSL_CERT_FILE"):
        Settings()
    monkeypatch.setenv("LABELTRAIL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.delenv("LABELTRAIL_KAFKA_SSL_CERT_FILE")
    with pytest.raises(ValidationError, match="SASL_SSL needs LABELTRAIL_KAFKA_SASL_MECHANISM"):
        Settings()
    monkeypatch.setenv("LABELTRAIL_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    with pytest.raises(ValidationError, match="TLS files are set but"):
        Settings()
