"""The search's trial ledger: read back as events, a damaged line refused by number."""

import json

import pytest

from llara.common.errors import DataError
from llara.tune.results import TrialLedger, trial_records


def test_the_ledger_reads_back_what_it_wrote_and_refuses_a_damaged_line(tmp_path):
    ledger = TrialLedger(tmp_path / "trials.jsonl")
    ledger.append("start", "t1", params={"train.lr": 0.001})
    ledger.append("result", "t1", epochs_done=1, **{"val_HitRatio@1": 0.25})
    ledger.append("complete", "t1")
    (record,) = trial_records(ledger.events(), "val_HitRatio@1", epochs=1)
    assert (record.status, record.history) == ("finished", [0.25])
    with ledger.path.open("a") as handle:
        handle.write(json.dumps({"event": "start", "trial": ["t2"], "time": 0}) + "\n")
    with pytest.raises(DataError, match="line 4.*not a trial event"):
        ledger.events()
    ledger.path.write_text('{"event": "start", "trial": "t1", "ti\n' +
                           json.dumps({"event": "complete", "trial": "t1", "time": 1}) + "\n")
    with pytest.raises(DataError, match="line 1.*not JSON"):
        ledger.events()


def test_a_cut_last_line_is_left_out_and_bad_results_are_refused(tmp_path):
    ledger = TrialLedger(tmp_path / "trials.jsonl")
    ledger.append("start", "t1", params={})
    with ledger.path.open("a") as handle:
        handle.write('{"event": "result", "trial": "t1", "ep')  # the search stopped here
    assert [e["event"] for e in ledger.events()] == ["start"]
    for bad, problem in (({"event": "result", "trial": "t1", "time": 1.0,
                           "val_HitRatio@1": 0.5}, "without its epochs_done"),
                         ({"event": "result", "trial": "t1", "time": 1.0, "epochs_done": 1,
                           "val_HitRatio@1": float("inf")}, "not finite")):
        ledger.path.write_text(json.dumps(bad) + "\n")
        with pytest.raises(DataError, match=problem):
            ledger.events()
    # A result whose start is not in the ledger still counts.
    ledger.path.write_text(json.dumps({"event": "result", "trial": "t2", "time": 1.0,
                                       "epochs_done": 1, "val_HitRatio@1": 0.5}) + "\n")
    (record,) = trial_records(ledger.events(), "val_HitRatio@1", epochs=1)
    assert record.history == [0.5]
