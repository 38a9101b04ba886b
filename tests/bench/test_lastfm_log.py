"""bench/lastfm_log.py: the released training rows back into each user's sequence."""

import json


def test_each_user_is_rebuilt_from_its_rows_and_a_long_history_is_followed(bench_module,
                                                                             tmp_path):
    lastfm_log = bench_module("lastfm_log")
    pad, width = 9, 3
    rows = []
    for sequence in ([0, 1, 2, 3, 4], [1, 0, 5]):  # the second user starts with item 1 too
        for t in range(len(sequence)):
            history = sequence[max(0, t - width):t]
            rows.append({"history": history + [pad] * (width - len(history)),
                         "len_history": len(history), "next": sequence[t]})
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert lastfm_log.user_sequences(path, pad) == [[0, 1, 2, 3, 4], [1, 0, 5]]
