import json

from bpcalc.cli import run


def test_step_example1_runs_and_prints_json(capsys):
    code = run(["step", "examples/example1.yaml", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert doc["steps"][0]["values"]["loss"] == 15.125
