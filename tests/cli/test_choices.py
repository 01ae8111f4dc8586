"""The CLI spells its choices out (so `lam --help` imports neither torch nor the trainers);
these tests keep them equal to the lists the code accepts."""

from lam.cli.main import distill, eval_command


def _choices(command, name):
    return tuple(next(p for p in command.params if p.name == name).type.choices)


def test_distill_stages_match_the_trainer():
    from lam.distill.train import STAGES

    assert _choices(distill, "stage") == STAGES


def test_eval_encoders_match_the_runner():
    from lam.evaluation.runner import ABLATIONS, ENCODERS, QUANTIZED

    assert set(_choices(eval_command, "encoders")) == set(ENCODERS + ABLATIONS + QUANTIZED)
