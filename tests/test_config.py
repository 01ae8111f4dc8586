import pytest

from lam import LAMConfig


def test_json_round_trip(tmp_path):
    config = LAMConfig(segment_len=128, pooling="mean", name="x")
    config.save(tmp_path / "c.json")
    assert LAMConfig.load(tmp_path / "c.json") == config


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(segment_len=2),
        dict(segment_len=1000),
        dict(num_heads=5),
        dict(pooling="max"),
    ],
)
def test_invalid_configs_raise(kwargs):
    with pytest.raises(ValueError):
        LAMConfig(**kwargs)


def test_unknown_fields_and_bad_json_raise(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        LAMConfig.from_dict({"hidden": 3})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError):
        LAMConfig.load(tmp_path / "bad.json")


def test_the_shipped_config_is_the_default_but_for_its_name():
    """``LAM()``, ``LAM.from_teacher()`` and a saved-and-loaded model pool the same way: the
    bundled config.json holds the defaults."""
    from lam.persistence import CONFIG_FILE, DEFAULT_MODEL_DIR

    shipped = LAMConfig.load(DEFAULT_MODEL_DIR / CONFIG_FILE)
    assert {**shipped.to_dict(), "name": "lam"} == LAMConfig().to_dict()
