"""Quality of `recurrent train seq2seq` with its defaults on the bundled CMUdict
grapheme-to-phoneme pairs: test-split WER, PER, BLEU, chrF and exact match beside the
majority-mapping baseline, greedy and beam decoding, the median and range over seeds, and
the wall time of training.

Runs the real CLI (`recurrent train seq2seq --out RUN --seed S`, then
`recurrent eval RUN --json`, then the test split decoded with --beam 5 through the task)
once per seed; any extra arguments after `--` go to train.

    python benchmarks/seq2seq_quality.py --seeds 0 1 2

Prints one JSON line per seed and a summary line; exit code 0 if the median test WER is
below --target (default 0.5, far above the published range: a few minutes of training).
Published CMUdict figures to place the result: joint-sequence n-gram models about 24-25%
WER, LSTM encoder-decoders about 21-29% WER (trained for hours on the same words).
"""
from __future__ import annotations

import json
import statistics
import sys

from _quality import parse_args, train_and_evaluate

BEAM = 5


def beam_metrics(run: str, beam: int) -> dict:
    """The test metrics with beam search (the task's decoding, the run's best weights)."""
    from recurrent.checkpoint import RunDir
    from recurrent.runs import load_model
    from recurrent_plugins.seq2seq import data, metrics
    from recurrent_plugins.seq2seq.task import TASK, Vocabulary, _longest
    model, info = load_model(RunDir.open(run))
    state, config = info["task_state"], info["config"]
    pairs = TASK.pairs(state, "test", config)
    sources, _ = TASK._encoded(state, pairs)
    vocab = Vocabulary(state["target_vocab"])
    runner = model.runner()
    hyps = []
    for i in range(0, len(sources), 256):
        h = runner.decode(data.source_batch(sources[i:i + 256]), beam=beam,
                          longest=_longest(state))  # the limit predict and eval use
        hyps.extend(vocab.decode(h.tokens[b, 0, :h.lengths[b, 0]]) for b in range(len(h.tokens)))
    return metrics.score(hyps, [t for _, t in pairs], state["target_level"], True)


def spread(values):
    return {"median": round(statistics.median(values), 4),
            "min": round(min(values), 4), "max": round(max(values), 4)}


def main(argv=None):
    args = parse_args(__doc__, "seq2seq", 0.5, "exit 0 if the median test WER is below it",
                      argv)
    rows = []
    for seed, seconds, report in train_and_evaluate("seq2seq", args, keep=True):
        m, b = report["metrics"], report["baselines"]["majority"]
        beam = beam_metrics(report["run"], BEAM)
        row = {"seed": seed, "train_seconds": round(seconds, 1),
               "threads": args.threads or "auto", "test_pairs": m["pairs"]}
        for key in ("wer", "per", "bleu", "chrf", "exact"):
            row[f"greedy_{key}"] = round(m[key], 4)
            row[f"beam{BEAM}_{key}"] = round(beam[key], 4)
            row[f"majority_{key}"] = round(b[key], 4)
        row["extra_args"] = args.train_args
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {"summary": True, "seeds": args.seeds}
    for key in rows[0]:
        if key not in ("seed", "threads", "extra_args", "test_pairs"):
            summary[key] = spread([r[key] for r in rows])
    print(json.dumps(summary))
    return 0 if summary["greedy_wer"]["median"] < args.target else 1


if __name__ == "__main__":
    sys.exit(main())
