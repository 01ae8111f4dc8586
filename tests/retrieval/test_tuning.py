"""The fusion-weight choice: best dev mean among the weights that meet issue 5's floors."""

from lam.retrieval.tuning import choose


def row(mean: float, answer: float, passkey: float = 100.0) -> dict:
    groups = {"qmsum-query": 62.0, "qmsum-answer": answer, "passkey": passkey, "needle": 100.0}
    return {"weights": {"passage": mean}, "mean": mean, "groups": groups}


FLOORS = {"qmsum-query": 61.09, "qmsum-answer": 95.68, "passkey": 100.0, "needle": 100.0}


def test_the_best_mean_that_meets_every_floor_wins():
    rows = [row(89.63, 95.63), row(89.60, 95.70, passkey=98.0), row(89.58, 95.71), row(89.50, 96.0)]
    best, met = choose(rows, FLOORS)
    assert met and best is rows[2]


def test_the_best_mean_wins_when_no_row_meets_the_floors():
    rows = [row(89.63, 95.0), row(89.58, 95.1)]
    best, met = choose(rows, FLOORS)
    assert not met and best is rows[0]
