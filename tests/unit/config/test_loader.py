"""Finding and reading the file: --config, PVC_CONFIG, YAML errors, I/O errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvc_core.config import DEFAULT_PATH, config_path, load_config, parse_yaml
from pvc_core.errors import ConfigError

from .stubs import RecordingLookup

GOOD = "cluster:\n  nodes: [node1, node2]\n"


def _write(tmp_path: Path, text: str, name: str = "pvc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_path_argument_wins_over_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    env = {"PVC_CONFIG": str(tmp_path / "other.yaml")}
    cfg = load_config(path, env=env, driver_lookup=RecordingLookup(), hostname="node2")
    assert cfg.source == str(path)
    assert cfg.cluster.nodes == ("node1", "node2")


def test_pvc_config_environment_variable(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD, "from-env.yaml")
    cfg = load_config(env={"PVC_CONFIG": str(path)}, driver_lookup=RecordingLookup(),
                      hostname="node1")
    assert cfg.source == str(path)


def test_default_path_when_nothing_given() -> None:
    assert config_path(None, {}) == DEFAULT_PATH == "/etc/pvc/pvc.yaml"
    assert config_path(None, {"PVC_CONFIG": ""}) == DEFAULT_PATH
    assert config_path("x.yaml", {"PVC_CONFIG": "y.yaml"}) == "x.yaml"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(env={"PVC_CONFIG": str(path)})
    assert str(info.value) == (
        f"{path}: configuration file not found (give --config or set PVC_CONFIG)")


def test_unreadable_file(tmp_path: Path) -> None:
    blocker = _write(tmp_path, "x")
    with pytest.raises(ConfigError, match=r"cannot read configuration file: Not a directory$"):
        load_config(blocker / "pvc.yaml")
    with pytest.raises(ConfigError, match=r"is a directory, not a configuration file$"):
        load_config(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "pvc.yaml"
    path.write_bytes(b"cluster: \xff\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(bad byte at offset 9\)$"):
        load_config(path)


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: configuration is empty"


def test_top_level_list(tmp_path: Path) -> None:
    path = _write(tmp_path, "- node1\n- node2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: top level must be a mapping of sections, got a list"


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "cluster:\n  nodes: [node1, node2\ntimers:\n  keepalive_interval: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: invalid YAML at line 3, column 7: ")


@pytest.mark.parametrize(("text", "expected"), [
    ("a: b: c\n", "pvc.yaml: invalid YAML at line 1, column 5: mapping values are not "
                  "allowed here"),
    ("a: 'open\n", "pvc.yaml: invalid YAML at line 2, column 1: while scanning a quoted "
                   "scalar; found unexpected end of stream"),
    ("a: 1\n---\nb: 2\n", "pvc.yaml: invalid YAML at line 2, column 1: expected a single "
                          "document in the stream; but found another document"),
])
def test_yaml_errors_are_one_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "pvc.yaml")
    assert str(info.value) == expected


def test_only_safe_yaml_is_accepted() -> None:
    with pytest.raises(ConfigError, match=r"could not determine a constructor for the tag "
                                          r"'tag:yaml.org,2002:python/object/apply:os.system'"):
        parse_yaml("x: !!python/object/apply:os.system ['true']\n", "pvc.yaml")


def test_duplicate_keys_are_errors() -> None:
    text = "fencing:\n  saving_throws: 2\n  enabled: true\n  saving_throws: 3\n"
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "pvc.yaml")
    assert str(info.value) == (
        "fencing.saving_throws: duplicate key at line 4 (first at line 2) in pvc.yaml")


def test_yaml_anchors_and_merge_keys_still_work() -> None:
    text = "base: &b {port: 1}\napi:\n  <<: *b\n  listen: ::1\n"
    assert parse_yaml(text) == {"base": {"port": 1}, "api": {"port": 1, "listen": "::1"}}


def test_recursive_alias_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^a\[0\]: recursive YAML alias in pvc.yaml$"):
        parse_yaml("a: &x [*x]\n", "pvc.yaml")


def test_validation_error_from_file_is_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + "fencing:\n  saving_throws: six\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, driver_lookup=RecordingLookup(), hostname="node1")
    assert str(info.value) == 'fencing.saving_throws: must be an integer >= 0, got "six"'
