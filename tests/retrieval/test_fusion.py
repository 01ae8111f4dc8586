import numpy as np
import pytest

from lam.retrieval.fusion import SIGNALS, FusionWeights, fuse, standardise


def test_parse_reads_the_four_weights_in_signal_order():
    weights = FusionWeights.parse("0.75, 0,1,0.25")
    assert weights == FusionWeights(passage=0.75, document=0.0, lexical=1.0, document_lexical=0.25)
    assert list(weights.as_dict()) == list(SIGNALS)


@pytest.mark.parametrize("text", ["1,2,3", "1,2,3,4,5", "a,0,1,0", "1,-1,0,0", "nan,0,1,0", ""])
def test_parse_refuses_what_is_not_four_non_negative_numbers(text):
    with pytest.raises(ValueError):
        FusionWeights.parse(text)


def test_fuse_is_the_weighted_sum_of_standardised_signals():
    rng = np.random.default_rng(0)
    signals = {name: rng.normal(size=(2, 5)) for name in SIGNALS}
    weights = FusionWeights(passage=2.0, document=0.0, lexical=0.5, document_lexical=1.0)
    expected = sum(w * standardise(signals[n]) for n, w in weights.as_dict().items())
    np.testing.assert_allclose(fuse(signals, weights), expected)
    # a weight of 0 means that signal cannot move the ranking
    moved = dict(signals, document=rng.normal(size=(2, 5)))
    np.testing.assert_allclose(fuse(moved, weights), expected)


def test_standardise_makes_a_constant_row_zero():
    z = standardise(np.array([[3.0, 3.0, 3.0], [1.0, 2.0, 3.0]]))
    assert np.all(z[0] == 0)
    np.testing.assert_allclose(z[1].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(z[1].std(), 1)
