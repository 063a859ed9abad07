"""YamlConfig: round trips of nested dataclasses, Path, Enum, tuples and Optional; the
extension check; non-mapping documents; atomic UTF-8 writes."""

from __future__ import annotations

import enum
import locale
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import pytest
import yaml

from allye_data_connector import YamlConfig, errors, settings


class Mode(enum.Enum):
    FAST = "fast"
    CAREFUL = "careful"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Camera(YamlConfig):
    index: int = 0
    exposure_ms: float = 10.0
    label: str = "cam"


@dataclass
class Acquisition(YamlConfig):
    rate_hz: int = 30
    output: Path = Path("out")
    mode: Mode = Mode.FAST
    level: Level = Level.LOW
    roi: tuple[int, int, int, int] = (0, 0, 640, 480)
    gains: tuple[float, ...] = (1.0,)
    camera: Camera = field(default_factory=Camera)
    spare: Optional[Camera] = None
    note: Optional[str] = None
    tags: list[str] = field(default_factory=list)
    limits: dict[str, float] = field(default_factory=dict)
    either: Union[int, str] = 0
    enabled: bool = True


def test_round_trip_of_every_supported_type(tmp_path):
    cfg = Acquisition(
        rate_hz=120, output=Path("/data/run 1/é"), mode=Mode.CAREFUL, level=Level.HIGH, roi=(1, 2, 3, 4),
        gains=(0.5, 2.0, 4.0), camera=Camera(index=2, exposure_ms=3.5, label="左"), spare=Camera(index=7),
        note="µs ✓", tags=["a", "b"], limits={"t": 1.5}, either="x", enabled=False,
    )
    path = tmp_path / "nested" / "acq.yaml"
    cfg.to_yaml(path)
    back = Acquisition.from_yaml(path)
    assert back == cfg
    assert isinstance(back.output, Path) and isinstance(back.roi, tuple) and isinstance(back.camera, Camera)
    assert back.mode is Mode.CAREFUL and back.level is Level.HIGH
    text = path.read_text(encoding="utf-8")
    assert "左" in text and "mode: careful" in text, "plain, human-editable YAML"
    assert Acquisition.from_yaml(path.with_suffix(".yaml")) == cfg
    # Defaults and None survive too.
    (tmp_path / "d.yml").write_text("")
    assert Acquisition.from_yaml(tmp_path / "d.yml") == Acquisition()
    Acquisition().to_yaml(tmp_path / "n.yml")
    assert Acquisition.from_yaml(tmp_path / "n.yml").spare is None


def test_extension_is_checked_before_touching_files(tmp_path):
    for name in ("c.json", "c", "c.yaml.bak", "c.txt"):
        with pytest.raises(errors.InvalidArgumentError, match=r"\.yaml or \.yml"):
            Camera().to_yaml(tmp_path / name)
        with pytest.raises(errors.InvalidArgumentError, match=r"\.yaml or \.yml"):
            Camera.from_yaml(tmp_path / name)
    assert list(tmp_path.iterdir()) == []
    Camera().to_yaml(tmp_path / "UPPER.YML")
    assert Camera.from_yaml(tmp_path / "UPPER.YML") == Camera()


def test_non_mapping_documents_and_bad_values_raise(tmp_path):
    path = tmp_path / "c.yaml"
    for doc in ("- 1\n- 2\n", "42\n", "just text\n"):
        path.write_text(doc)
        with pytest.raises(errors.InvalidArgumentError, match="must hold a mapping"):
            Camera.from_yaml(path)
    path.write_text("index: [1\n")
    with pytest.raises(errors.InvalidArgumentError, match="not valid YAML"):
        Camera.from_yaml(path)
    for doc, match in (("rate_hz: many\n", "rate_hz: expected an int"), ("mode: slow\n", "not a Mode"),
                       ("roi: [1, 2]\n", "expected 4 items"), ("camera: 3\n", "expected a mapping"),
                       ("enabled: 2\n", "true or false")):
        path.write_text(doc)
        with pytest.raises(errors.InvalidArgumentError, match=match):
            Acquisition.from_yaml(path)
    with pytest.raises(FileNotFoundError):
        Camera.from_yaml(tmp_path / "missing.yaml")

    @dataclass
    class Required(YamlConfig):
        needed: int

    path.write_text("other: 1\n")
    with pytest.raises(errors.InvalidArgumentError, match="needed"):
        Required.from_yaml(path)


def test_failed_dump_leaves_the_old_file(tmp_path):
    path = tmp_path / "c.yaml"
    Camera(index=1).to_yaml(path)
    before = path.read_bytes()

    @dataclass
    class Bad(YamlConfig):
        thing: object = field(default_factory=object)

    with pytest.raises(errors.InvalidArgumentError, match="cannot be written"):
        Bad().to_yaml(path)
    assert path.read_bytes() == before

    class Boom(Exception):
        pass

    def fail(*_a, **_k):
        raise Boom

    real = os.replace
    os.replace = fail  # the rename step fails: the temporary file goes, the old file stays
    try:
        with pytest.raises(Boom):
            Camera(index=2).to_yaml(path)
    finally:
        os.replace = real
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_utf8_whatever_the_locale(tmp_path):
    path = tmp_path / "u.yaml"
    code = f"""
        import locale, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_yaml_config import Camera
        assert locale.getpreferredencoding(False).lower() in ("ascii", "ansi_x3.4-1968"), locale.getpreferredencoding(False)
        label = "Gr\\u00fc\\u00dfe \\u5de6"  # escaped: the C locale's command line is ASCII
        Camera(label=label).to_yaml({str(path)!r})
        print(Camera.from_yaml({str(path)!r}).label == label)
    """
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    assert "Grüße 左" in path.read_bytes().decode("utf-8")
    assert yaml.safe_load(path.read_bytes().decode("utf-8"))["label"] == "Grüße 左"


def test_settings_is_a_yaml_config(tmp_path):
    assert issubclass(settings.Settings, YamlConfig) and settings.YamlConfig is YamlConfig
    path = tmp_path / "settings.yaml"
    path.write_text("chunk_rows: 1_000\nnotify_canvas: 'no'\n")
    s = settings.Settings.from_yaml(path)
    assert (s.chunk_rows, s.notify_canvas) == (1000, False), "settings keep their lenient coercion"
    assert locale.getpreferredencoding(False)  # the locale module is importable here


def test_fields_named_like_builtins_load_as_ataraxis_loads_them(tmp_path):
    """ataraxis' own tests name fields `list` and annotate them `Optional[list]`: in the class
    body the annotation then sees the field's default (None), so the hint allows only None.
    The file's value is kept, as ataraxis keeps it."""
    from dataclasses import dataclass
    from typing import Optional

    @dataclass
    class Config(YamlConfig):
        key1: str = ""
        nested: Optional[dict] = None
        list: Optional[list] = None  # noqa: A003 - the peer's own spelling

    path = tmp_path / "c.yml"
    path.write_text("key1: v\nnested: {key: value}\nlist: [1, 2, 3]\n", encoding="utf-8")
    loaded = Config.from_yaml(path)
    assert (loaded.key1, loaded.nested, loaded.list) == ("v", {"key": "value"}, [1, 2, 3])
