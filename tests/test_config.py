import pytest

from lam import LAMConfig


def test_json_round_trip(tmp_path):
    config = LAMConfig(segment_len=128, fast_retention=0.25, name="x")
    config.save(tmp_path / "c.json")
    assert LAMConfig.load(tmp_path / "c.json") == config


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(segment_len=2),
        dict(segment_len=1000),
        dict(num_heads=5),
        dict(fast_retention=1.0),
        dict(chunk_size=0),
        dict(redundancy_tau=-0.1),
        dict(redundancy_power=0.0),
        dict(idf_passage_tokens=-1),
        dict(idf_min_text_tokens=-1),
        dict(idf_df_offset=-0.1),
        dict(idf_df_offset=1.0),
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


def test_initial_rates_give_the_configured_retention():
    import math

    c = LAMConfig()
    assert math.exp(-c.initial_log_rate(c.fast_retention) * c.segment_len) == pytest.approx(0.3)
    assert math.exp(-c.initial_log_rate(c.slow_retention) * c.segment_len) == pytest.approx(0.85)
