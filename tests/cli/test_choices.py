"""The CLI spells its choices out (so `lam --help` imports neither torch nor the trainers);
these tests keep them equal to the lists the code accepts."""

import subprocess
import sys

from lam.cli.evaluate import eval_command
from lam.cli.main import COMMANDS, cli, load_command
from lam.cli.train import distill


def _choices(command, name):
    return tuple(next(p for p in command.params if p.name == name).type.choices)


def test_distill_stages_match_the_trainer():
    from lam.distill.train import STAGES

    assert _choices(distill, "stage") == STAGES


def test_eval_encoders_match_the_runner():
    from lam.evaluation.runner import ABLATIONS, ENCODERS, QUANTIZED

    assert set(_choices(eval_command, "encoders")) == set(ENCODERS + ABLATIONS + QUANTIZED)


def test_help_lists_every_command_without_importing_torch():
    code = "import sys; from lam.cli.main import cli; cli(['--help'], standalone_mode=False); "
    code += "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")
    for name in COMMANDS:
        assert name in out
        assert load_command(name).name == name  # the table names the right function
    assert cli.get_command(None, "no-such-command") is None
