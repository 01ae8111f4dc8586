"""A model folder is untrusted input (hub folders come from anyone): checksum entries may only
name regular files inside the folder, the listing and config.json are parsed strictly, and any
mutation of them ends as a WeightsError or a model that loads, never another error or a hang."""

from __future__ import annotations

import json
import signal
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lam import LAM, WeightsError
from lam.config import LAMConfig
from lam.persistence import write_checksums
from tests.conftest import make_tiny_lam


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m"
    make_tiny_lam().save_pretrained(path)
    return path


@pytest.fixture
def copy(folder, tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    for f in folder.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


class _Hang(Exception):
    pass


def _load_within(path, seconds: int = 20):
    """LAM(path), failing the test instead of hanging (a checksum entry naming /dev/zero once did)."""

    def alarm(*_):
        raise _Hang(f"LAM({path}) still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        return LAM(path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _listing(copy, extra: str) -> None:
    (copy / "checksums.sha256").write_text((copy / "checksums.sha256").read_text() + extra)


@pytest.mark.parametrize(
    "entry, message",
    [
        ("../../../etc/passwd", "not '<sha256>  <file name>'"),
        ("/etc/passwd", "not '<sha256>  <file name>'"),
        ("..", "not a file of the model folder"),
        ("sub\\file", "not '<sha256>  <file name>'"),
    ],
)
def test_checksum_entries_outside_the_folder_are_refused_unread(copy, entry, message):
    _listing(copy, f"{'0' * 64}  {entry}\n")
    with pytest.raises(WeightsError, match=message) as caught:
        _load_within(copy)
    assert "root:" not in str(caught.value)


def test_checksum_entry_that_is_a_device_or_folder_is_refused_without_reading_it(copy):
    (copy / "zero").symlink_to("/dev/zero")
    _listing(copy, f"{'0' * 64}  zero\n")
    with pytest.raises(WeightsError, match="not a regular file"):
        _load_within(copy)  # hashing /dev/zero would never end
    (copy / "zero").unlink()
    (copy / "zero").mkdir()
    with pytest.raises(WeightsError, match="not a regular file"):
        _load_within(copy)


@pytest.mark.parametrize(
    "content, message",
    [
        ("config.json\n", "not '<sha256>  <file name>'"),  # no separator: once a raw IsADirectoryError
        ("Z" * 64 + "  config.json\n", "not '<sha256>  <file name>'"),
        ("", "does not list"),
        (None, "a second time"),
        ("\xe9t\xe9\n", "not ASCII"),
    ],
)
def test_a_malformed_listing_is_one_clear_error(copy, content, message):
    listing = copy / "checksums.sha256"
    if content is None:  # a repeated entry
        listing.write_text(listing.read_text() * 2)
    else:
        listing.write_bytes(content.encode("latin-1"))
    with pytest.raises(WeightsError, match=message):
        _load_within(copy)


def test_the_listing_itself_must_be_a_small_regular_file(copy):
    listing = copy / "checksums.sha256"
    listing.unlink()
    listing.symlink_to("/dev/zero")
    with pytest.raises(WeightsError, match="regular file"):
        _load_within(copy)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("hidden_size", "384", "hidden_size must be an integer"),  # once: "not all arguments converted"
        ("num_layers", 2.0, "num_layers must be an integer"),
        ("memory", 1, "memory must be true or false"),
        ("num_heads", True, "num_heads must be an integer"),
        ("layer_norm_eps", "1e-12", "layer_norm_eps must be a finite number"),
        ("name", None, "name must be a string"),
        ("vocab_size", 10**12, "vocab_size must be in"),
        ("hidden_size", -4, "hidden_size must be in"),
        ("pad_token_id", 10**6, "token id"),
        ("hidden_size", 1 << 20, "parameters"),
    ],
)
def test_config_values_are_type_checked_with_clear_messages(copy, field, value, message):
    data = json.loads((copy / "config.json").read_text())
    data[field] = value
    (copy / "config.json").write_text(json.dumps(data))
    write_checksums(copy)
    with pytest.raises(WeightsError, match=message):
        _load_within(copy)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"hidden_size": NaN}', "not a number JSON allows"),
        ('{"name": "a", "name": "b"}', "repeated keys"),
        ("[" * 100_000, "not valid JSON"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_config_json_is_parsed_strictly(copy, text, message):
    (copy / "config.json").write_text(text)
    write_checksums(copy)
    with pytest.raises(WeightsError, match=message):
        _load_within(copy)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_FIELDS = [f for f in LAMConfig.__dataclass_fields__]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.dictionaries(st.sampled_from([*_FIELDS, "extra"]), _JSON, min_size=1, max_size=3),
    raw=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_fuzzed_config_loads_or_is_a_weights_error(copy, changes, raw):
    original = (copy / "config.json").read_bytes()
    if raw is None:
        data = {**json.loads(original), **changes}
        (copy / "config.json").write_text(json.dumps(data))
    else:
        (copy / "config.json").write_bytes(raw)
    write_checksums(copy)
    try:
        _load_within(copy)
    except WeightsError:
        pass
    finally:
        (copy / "config.json").write_bytes(original)
        write_checksums(copy)


_LINE = st.one_of(
    st.text(alphabet=string.printable, max_size=90),
    st.builds(
        lambda digest, sep, name: f"{digest}{sep}{name}",
        st.text(alphabet="0123456789abcdef", min_size=63, max_size=65),
        st.sampled_from(["  ", " *", " ", "\t", ""]),
        st.sampled_from(["config.json", "model.safetensors", "tokenizer.json", "..", "../x", "/dev/zero", "a/b", ""]),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_LINE, max_size=6), keep=st.booleans())
def test_fuzzed_checksum_listing_loads_or_is_a_weights_error(copy, lines, keep):
    listing = copy / "checksums.sha256"
    original = listing.read_text()
    listing.write_text((original if keep else "") + "\n".join(lines) + "\n")
    try:
        _load_within(copy)
    except WeightsError:
        pass
    finally:
        listing.write_text(original)
