"""The seq2seq task: transduce a source sequence into a target sequence with an
encoder-decoder with attention (recurrent.seq2seq), on any TSV of source<TAB>target pairs.

Default data: English grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary
(data/SOURCE.md): a word's letters -> its phonemes. Data flow: prepare() reads the file,
splits the pairs by a hash of the source (data.split_of: 90/5/5, fixed), and builds both
vocabularies from the training split (a symbol seen only in valid/test reads as <unk>).
The run state records the file, the levels, the vocabularies and a content fingerprint.

Model spec "model": "seq2seq": TrainingConfig.build_model makes a Seq2SeqModel with the
run's --cell, --hidden, --layers, --bidirectional, --dropout (the decoder has the
encoder's layers and D*H units). Loss: cross-entropy of the teacher-forced next target
symbol. evaluate() adds greedy-decoding metrics (metrics.score): exact match, BLEU, chrF,
and the symbol error rate (PER and WER for g2p).

Dimension legend: B pairs, S source symbols, t decoded symbols.
"""
from __future__ import annotations

import json

import click
import numpy as np

from recurrent import cache, datafile, report, schema
from recurrent.checks import C_INT_MAX
from recurrent.errors import TrainingDataUnavailable, UserError
from recurrent.memo import Kept
from recurrent.moved_data import not_the_runs_data
from recurrent.lengths import valid_mask
from recurrent.predict_api import run_word
from recurrent.progress import warn_once
from recurrent.report import TRAIN_OVERLAP
from recurrent.step import VALID_LOSS_RUN, SplitLoss, valid_loss_name
from recurrent_plugins.sentiment.text import length_buckets

from . import data, metrics
from .data import BOS, EOS, SOURCE_UNK, UNK, Vocabulary

EMBED_DIM = 64
ATTENTION = "general"  # default --attention
ALPHA = 1.0  # default predict --alpha: scores divided by length^alpha
EVAL_BATCH = 512  # pairs per decoding call in evaluate()
# evaluate()'s count of the inputs that had no finite hypothesis (_no_hypothesis), there
# only when some had none; eval's report says so in a note (_no_hypothesis_note)
NO_HYPOTHESIS = "no_hypothesis"
# evaluate()'s count of a split's pairs when the run's --max-eval scored fewer of them,
# there only then; eval's report says so in a note (_max_eval_note)
SPLIT_PAIRS = "split_pairs"
OVERFLOW_ADVICE = ("as those of a diverging training do; train it again with a lower --lr "
                   "or --clip-norm")
# The baselines' scores, kept per data, split and settings (Seq2Seq.baselines): in this
# process (JSON text, so that a caller cannot change them) and in recurrent.cache. Bump
# the format when the baselines or metrics.score change what they compute.
BASELINES_NAMESPACE = "seq2seq-baselines"
BASELINES_FORMAT = 2
_baseline_scores = Kept(4)  # a few splits of one or two data files
_splits = Kept(3)  # pairs and ids of the train, valid and test splits (_split)


def _longest_target(value, where):
    """A saved longest_target: a whole number from 0 to C_INT_MAX, the largest decoding
    limit (--max-len's); a larger one would overflow default_max_len's int64 limits."""
    schema.at_least(0)(value, where)
    if value > C_INT_MAX:
        raise ValueError(f"{where}: expected an integer <= {C_INT_MAX}, got {value}")


# What a saved run's state must hold (check_state; recurrent.schema).
STATE = schema.fields(
    {"data": str, "fingerprint": str, "source_level": schema.one_of(*data.LEVELS),
     "target_level": schema.one_of(*data.LEVELS), "source_vocab": schema.list_of(str),
     "target_vocab": schema.list_of(str)},
    {"max_train": schema.nullable(schema.at_least(0)), "g2p": bool,
     "lowercase_input": schema.nullable(bool), "longest_target": _longest_target,
     "batch_by": schema.one_of("padded"), "header": schema.nullable(bool),
     "two_fields": bool, "unicode": schema.nullable(schema.one_of(*datafile.FORMS)),
     "strip": bool, "valid_loss": schema.one_of(VALID_LOSS_RUN)})

# Defaults of the shared training options for this task (benchmarks/README.md, seq2seq).
DEFAULTS = {
    "cell": "lstm",
    "hidden": 128,
    "layers": 1,
    "bidirectional": True,
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 3e-3,
    "schedule": "cosine",
    "clip_norm": 5.0,
    "epochs": 2,
}


class Seq2Seq:
    name = "seq2seq"
    help = ("Sequence to sequence (encoder-decoder with attention) on source<TAB>target "
            "pairs; default: English grapheme-to-phoneme (CMUdict).")
    loss = "cross_entropy"
    unused_options = ("seq_len", "tbptt", "ensemble")  # decoding reads one model's states

    # ---- CLI surface -------------------------------------------------------------------

    def options(self) -> list:
        return [
            click.Option(["--data"], default=data.BUNDLED, show_default=True, metavar="FILE",
                         help="TSV of source<TAB>target lines (plain or compressed); the "
                              "default is the bundled CMUdict grapheme-to-phoneme pairs. "
                              "Split by a hash of the source: 90% train, 5% valid, 5% test."),
            click.Option(["--header/--no-header"], default=None,
                         help="The file's first line names the columns: skip it (default: "
                              "skipped when both its fields are column names such as "
                              "source/target or word/pronunciation)."),
            click.Option(["--source-level"], type=click.Choice(data.LEVELS), default="char",
                         show_default=True, help="Source symbols: characters or "
                                                 "whitespace-separated tokens."),
            click.Option(["--target-level"], type=click.Choice(data.LEVELS), default=None,
                         help="Target symbols (default: token for the bundled data, where "
                              "phonemes are separated by spaces, else as --source-level)."),
            click.Option(["--max-train"], type=click.IntRange(min=0), default=0,
                         show_default=True,
                         help="Train on N training pairs only, spread evenly over the "
                              "file (0 = all)."),
            click.Option(["--max-eval"], type=click.IntRange(min=0), default=0,
                         show_default=True,
                         help="Score N validation/test pairs only, spread evenly over "
                              "the file (0 = all): "
                              "decoding every pair at each evaluation costs time on large "
                              "data."),
            click.Option(["--embed-dim"], type=click.IntRange(min=1), default=EMBED_DIM,
                         show_default=True, help="Embedding size (source and target)."),
            click.Option(["--attention"], type=click.Choice(("general", "dot", "additive")),
                         default=ATTENTION, show_default=True,
                         help="Luong attention after the decoder RNN, score h.W.s "
                              "(general) or h.s (dot): the teacher-forced decoder runs in "
                              "one call per layer; or additive (Bahdanau-style) attention "
                              "with input feeding: a Python loop over target steps."),
        ]

    def defaults(self) -> dict:
        return dict(DEFAULTS)

    def predict_options(self) -> list:
        return [
            click.Argument(["inputs"], nargs=-1),
            click.Option(["--beam"], type=click.IntRange(min=1, max=C_INT_MAX), default=1,
                         show_default=True, help="Beam width (1 = greedy decoding)."),
            click.Option(["--n-best"], type=click.IntRange(min=1), default=1,
                         show_default=True, help="Hypotheses shown per input (<= --beam)."),
            click.Option(["--alpha"], type=click.FloatRange(min=0.0), default=ALPHA,
                         show_default=True,
                         help="Length normalisation of the beam's final ranking: score / "
                              "length^alpha (0 = raw log-probability)."),
            click.Option(["--max-len"], type=click.IntRange(min=1, max=C_INT_MAX), default=None,
                         help="Most decoding steps, </s> included: an output of N "
                              "symbols needs N + 1 to finish (default: 2 x each input's "
                              "length, or the longest training target if longer, + 10)."),
            click.Option(["--json", "as_json"], is_flag=True,
                         help="One JSON object per input."),
            click.Option(["--plot"], default=None, metavar="FILE.png",
                         help="Draw the attention weights of the first input's best "
                              "hypothesis (needs matplotlib)."),
        ]

    # ---- data ---------------------------------------------------------------------------

    @staticmethod
    def _levels(config: dict) -> tuple[str, str]:
        bundled = (config.get("data") or data.BUNDLED) == data.BUNDLED
        source = config.get("source_level") or "char"
        target = config.get("target_level") or ("token" if bundled else source)
        return source, target

    def prepare(self, config: dict) -> dict:
        metrics.require_sacrebleu()  # before training, not at the first evaluation
        name = config.get("data") or data.BUNDLED
        path = data.resolve_path(name)
        header = config.get("header")
        header = None if header is None else bool(header)
        reading = {"header": header, "two_fields": True, "unicode": datafile.TEXT_FORM,
                   "strip": True}
        pairs, fingerprint = data.read_pairs(path, **data.reading(reading))
        source_level, target_level = self._levels(config)
        if header:
            _note_header_like_pair(path, pairs, reading, source_level, target_level)
        splits = [data.split_of(s) for s, _ in pairs]
        train = [(data.symbols(s, source_level), data.symbols(t, target_level))
                 for (s, t), split in zip(pairs, splits) if split == "train"]
        max_train = int(config.get("max_train") or 0)
        train = data.spread(train, max_train)
        if not train:
            raise UserError(f"{data.shown(path)} has no training pairs (90% of the "
                            f"sources, by hash; it has {len(pairs)} pair"
                            f"{'' if len(pairs) == 1 else 's'})")
        counts = {split: splits.count(split) for split in data.SPLITS}
        counts["train"] = len(train)
        empty = [name for split, name in (("valid", "validation"), ("test", "test"))
                 if not counts[split]]
        if empty:  # checked before the run directory is made: evaluation scores them
            raise UserError(f"{data.shown(path)} has no {' and no '.join(empty)} "
                            f"pairs (5% of the sources each, by hash; it has {len(pairs)} "
                            f"pair{'' if len(pairs) == 1 else 's'}): give a larger file")
        return {
            "data": name if name == data.BUNDLED else path,
            "fingerprint": fingerprint,
            "source_level": source_level,
            "target_level": target_level,
            "max_train": max_train,
            "g2p": name == data.BUNDLED,
            "lowercase_input": name == data.BUNDLED,
            "source_vocab": Vocabulary.build((s for s, _ in train),
                                             data.SOURCE_SPECIALS).items,
            "target_vocab": Vocabulary.build((t for _, t in train),
                                             data.TARGET_SPECIALS).items,
            # the default decoding limit does not cut outputs this long (_longest)
            "longest_target": max(len(t) for _, t in train),
            "batch_by": "padded",  # _batch_lengths
            **reading,  # how the file is read again (data.reading)
            "counts": counts,
            "valid_loss": VALID_LOSS_RUN,  # evaluate()'s loss is the run's --loss
        }

    def resolved_options(self, state: dict) -> dict:
        return {"target_level": state.get("target_level")}

    def read_files(self, state: dict) -> dict:
        return {} if state["data"] == data.BUNDLED else {"data": state["data"]}

    def moved_files(self, state: dict, moved: dict) -> dict:
        state = dict(state, data=moved["data"])
        self._split(state, "valid", {}, moved=True)  # the pairs there, checked by fingerprint
        return state

    def check_state(self, state: dict, model_spec: dict) -> None:
        schema.check(state, STATE, "")
        for side, specials in (("source", data.SOURCE_SPECIALS),
                               ("target", data.TARGET_SPECIALS)):
            vocab = state[f"{side}_vocab"]
            if tuple(vocab[:len(specials)]) != specials:  # their ids are fixed (data.py)
                raise ValueError(f"{side}_vocab: expected to start with "
                                 f"{', '.join(specials)}, got {vocab[:len(specials)]!r}")
            schema.sized_as(model_spec, f"{side}_vocab", len(vocab), f"{side}_vocab")
        schema.sized_as(model_spec, "output_size", len(state["target_vocab"]), "target_vocab")

    def pairs(self, state: dict, split: str, config: dict) -> list:
        """[(source symbols, target symbols)] of a split; "test" with `eval --data FILE`
        is that whole file, its sources read as predict reads an input (lower-cased for
        g2p; a source symbol the model never saw is refused, as char-lm's eval --data
        refuses an unknown character)."""
        return self._split(state, split, config)[0]

    def _split(self, state: dict, split: str, config: dict, moved: bool = False) -> tuple:
        """(pairs, encoded sources, encoded targets) of a split (pairs()), the run's data's
        kept per process: every epoch, evaluation and check of a run asks again.
        ``moved``: the run's data file is given as the new place of that data, which a
        file of other content then is not (rather than changed since training)."""
        if split == "test" and config.get("eval_data"):
            pairs = self._eval_data_pairs(state, config["eval_data"])
            return (pairs, *self._encoded(state, pairs))
        if split not in data.SPLITS:
            raise UserError(f"unknown split {split!r}: seq2seq has train, valid, test")
        rules = data.reading(state)
        try:
            pairs, fingerprint = data.read_pairs(data.resolve_path(state["data"]), **rules)
        except UserError as e:
            raise TrainingDataUnavailable(f"{e} (the data this run was trained on)") from None
        if fingerprint != state["fingerprint"]:
            path, why = data.resolve_path(state["data"]), "content fingerprint differs"
            raise TrainingDataUnavailable(not_the_runs_data(path, why) if moved else
                                          f"{path} changed since this run was trained "
                                          f"({why})")
        limit = int(state.get("max_train") or 0) if split == "train" else _max_eval(config)
        key = (state["data"], fingerprint, tuple(rules.values()), split, limit,
               state["source_level"], state["target_level"], tuple(state["source_vocab"]),
               tuple(state["target_vocab"]))
        if key not in _splits:
            pairs = data.spread([p for p in pairs if data.split_of(p[0]) == split], limit)
            pairs = [(data.symbols(s, state["source_level"]),
                      data.symbols(t, state["target_level"])) for s, t in pairs]
            _splits[key] = (pairs, *self._encoded(state, pairs))
        return _splits[key]

    def _eval_data_pairs(self, state: dict, name: str) -> list:
        path = data.resolve_path(name)
        label = data.shown(path)
        pairs, _, numbers = data.read_numbered_pairs(path, **_eval_reading(state))
        vocab = Vocabulary(state["source_vocab"])
        out, unknown, first = [], set(), None
        for number, (s, t) in zip(numbers, pairs):
            source = data.symbols(_input_text(state, s), state["source_level"])
            missing = vocab.unknown(source)
            if missing and first is None:
                first = (number, s)
            unknown.update(missing)
            out.append((source, data.symbols(t, state["target_level"])))
        if unknown:
            shown = ", ".join(datafile.shown(c) for c in sorted(unknown)[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise UserError(f"{label} has source symbols the model never saw in training: "
                            f"{shown}{more} (first on line {first[0]}, {first[1]!r})")
        return out

    def _encoded(self, state, pairs):
        src_vocab, tgt_vocab = Vocabulary(state["source_vocab"]), Vocabulary(state["target_vocab"])
        return ([src_vocab.encode(s, SOURCE_UNK) for s, _ in pairs],
                [tgt_vocab.encode(t, UNK) for _, t in pairs])

    def _batch_rows(self, state: dict, split: str, config: dict, rng: np.random.Generator):
        """(sources, targets, the rows of each batch) of batches()."""
        _, sources, targets = self._split(state, split, config)
        batch_size = int(config.get("batch_size") or DEFAULTS["batch_size"])
        return sources, targets, length_buckets(_batch_lengths(state, sources, targets),
                                                batch_size, rng if split == "train" else None)

    def batches(self, state: dict, split: str, config: dict, rng: np.random.Generator):
        sources, targets, order = self._batch_rows(state, split, config, rng)
        for rows in order:
            yield data.pair_batch([sources[i] for i in rows], [targets[i] for i in rows])

    def count_batches(self, state: dict, split: str, config: dict,
                      rng: np.random.Generator) -> int:
        return len(self._batch_rows(state, split, config, rng)[2])

    # ---- model and metrics --------------------------------------------------------------

    def model_spec(self, state: dict, config: dict) -> dict:
        V = len(state["target_vocab"])
        return {"model": "seq2seq", "source_vocab": len(state["source_vocab"]),
                "target_vocab": V, "embed_dim": int(config.get("embed_dim") or EMBED_DIM),
                "attention": config.get("attention") or ATTENTION, "bos": BOS, "eos": EOS,
                "output": "sequence", "output_size": V}

    def evaluate(self, state: dict, split: str, config: dict, model) -> dict:
        metrics.require_sacrebleu()  # before decoding the split, not after
        pairs, sources, targets = self._split(state, split, config)
        if not pairs:
            raise UserError(f"the {split} split holds no pairs")
        # the run's --loss: it picks the best checkpoint (the task's own loss for a run
        # saved before its state recorded "valid_loss")
        loss = SplitLoss(self, {**config, "loss": valid_loss_name(state, config, self.loss)})
        for rows in length_buckets(_batch_lengths(state, sources, targets), EVAL_BATCH, None):
            batch = data.pair_batch([sources[i] for i in rows], [targets[i] for i in rows])
            logits, _ = model.forward(batch["x"], lengths=batch["lengths"])
            loss.add(logits, batch["y"], valid_mask(batch["lengths"], *batch["y"].shape))
        tgt_vocab = Vocabulary(state["target_vocab"])
        # A data-parallel run's sharded runner scores the loss; every rank decodes whole.
        decoder = model if hasattr(model, "decode") else model.model.runner()
        # decoding reads the sources only: batched by their lengths
        order = length_buckets(np.array([len(s) for s in sources]), EVAL_BATCH, None)
        hyps = []
        unscored = 0  # inputs whose best hypothesis has no finite score (_no_hypothesis)
        for rows in order:
            h = decoder.decode(data.source_batch([sources[i] for i in rows]),
                               attention=False,  # only the tokens are scored
                               longest=_longest(state))
            hyps.extend(tgt_vocab.decode(h.tokens[b, 0, :h.lengths[b, 0]])
                        for b in range(len(rows)))
            unscored += int(np.count_nonzero(~np.isfinite(h.scores[:, 0])))
        refs = [pairs[i][1] for rows in order for i in rows]
        out = {"loss": loss.value}
        out.update(metrics.score(hyps, refs, state["target_level"], state.get("g2p", False)))
        if unscored:
            out[NO_HYPOTHESIS] = unscored
        whole = int(state.get("counts", {}).get(split) or 0)
        if split != "train" and not (split == "test" and config.get("eval_data")) \
                and len(pairs) < whole:
            out[SPLIT_PAIRS] = whole
        if split == "test" and config.get("eval_data"):
            overlap = self._training_overlap(state, sources)
            if overlap is not None:
                out[TRAIN_OVERLAP] = overlap
        return out

    def _training_overlap(self, state: dict, sources: list) -> int | None:
        """How many of an eval --data file's pairs have a source the run trained on (as
        the model reads it: the same symbol ids), so that their scores are not held-out
        ones; None when the run's own data cannot be read (the figures stand without it)."""
        try:
            _, train, _ = self._split(state, "train", {})
        except TrainingDataUnavailable:
            return None
        return report.overlap_count(sources, train)

    def format_report(self, state: dict, scores: dict, baselines: dict) -> list[str]:
        """The generic table (recurrent.report.generic_report), with the note on an eval
        --data file's pairs the run trained on, the one on inputs that had no finite
        hypothesis (scores[NO_HYPOTHESIS], a count rather than a score: not in the
        table) and the one on a split that the run's --max-eval cut (scores[SPLIT_PAIRS],
        not in the table either)."""
        scores = dict(scores)
        unscored = scores.pop(NO_HYPOTHESIS, 0)
        whole = scores.pop(SPLIT_PAIRS, 0)
        lines = report.generic_report(scores, baselines, scores.get("pairs"), "pairs")
        if unscored:
            lines.insert(0, _no_hypothesis_note(unscored, scores.get("pairs")))
        if whole:
            lines.insert(0, _max_eval_note(scores.get("pairs"), whole))
        return lines

    def baselines(self, state: dict, split: str, config: dict) -> dict:
        """The majority and copy baselines' metrics on ``split``: scored once per data,
        split and settings they depend on (this process and recurrent.cache: every run
        and `eval` on the same data would score the same outputs again)."""
        pairs = self.pairs(state, split, config)  # its checks first (file changed, ...)
        key = self._baselines_key(state, split, config)
        memo = json.dumps(key, sort_keys=True)
        if memo in _baseline_scores:
            return json.loads(_baseline_scores[memo])
        stored = cache.load(BASELINES_NAMESPACE, key)
        out = None
        if stored is not None and "scores" in stored:
            try:
                out = json.loads(str(stored["scores"]))
            except ValueError:
                pass
        if not isinstance(out, dict):
            out = self._score_baselines(state, pairs, config)
            cache.store(BASELINES_NAMESPACE, key, {"scores": np.array(json.dumps(out))})
        _baseline_scores[memo] = json.dumps(out)
        return json.loads(_baseline_scores[memo])

    def _score_baselines(self, state: dict, pairs: list, config: dict) -> dict:
        train = self.pairs(state, "train", config)
        refs = [t for _, t in pairs]
        g2p = state.get("g2p", False)
        level = state["target_level"]
        mapping = metrics.majority_mapping(train)
        out = {"majority": metrics.score([metrics.apply_mapping(mapping, s) for s, _ in pairs],
                                         refs, level, g2p)}
        if state["source_level"] == level:
            out["copy"] = metrics.score([s for s, _ in pairs], refs, level, g2p)
        return out

    @staticmethod
    def _baselines_key(state: dict, split: str, config: dict) -> dict:
        """What the baselines' scores on ``split`` depend on: the training pairs (the
        majority mapping), the scored pairs, the levels, g2p and the scorers' versions."""
        if split == "test" and config.get("eval_data"):  # `eval --data FILE`: that file
            path = data.resolve_path(config["eval_data"])
            scored = {"eval_data": data.read_pairs(path, **_eval_reading(state))[1],
                      "lowercase": bool(state.get("lowercase_input"))}
        else:
            scored = {"split": split, "max_eval": (_max_eval(config)
                                                   if split != "train" else 0)}
        return {"format": BASELINES_FORMAT, "fingerprint": state["fingerprint"],
                "reading": data.reading(state),
                "max_train": int(state.get("max_train") or 0),
                "source_level": state["source_level"], "target_level": state["target_level"],
                "g2p": bool(state.get("g2p", False)),
                "sacrebleu": metrics.require_sacrebleu().__version__, **scored}

    # ---- prediction ---------------------------------------------------------------------

    def _sources(self, state: dict, inputs, vocab: Vocabulary | None = None) -> list:
        """The inputs' encoded sources; ``vocab``: the run's source Vocabulary, when the
        caller keeps it (predict --stream encodes one line at a time)."""
        if not inputs:  # the example names the run as its caller did (run_word)
            raise UserError(f"give the text to transduce, e.g. recurrent predict "
                            f"{run_word()} \"word\"")
        vocab = Vocabulary(state["source_vocab"]) if vocab is None else vocab
        out = []
        for text in inputs:
            text = _input_text(state, text)
            seq = data.symbols(text, state["source_level"])
            if not seq:
                raise UserError("an input is empty")
            unknown = vocab.unknown(seq)
            if unknown:
                # a long input is cut in the message: a stream's line may be megabytes
                shown = ", ".join(datafile.shown(s) for s in unknown[:5])
                more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
                raise UserError(f"input {datafile.excerpt(text)} has symbols the model "
                                f"never saw in training: {shown}{more}")
            out.append(vocab.encode(seq, SOURCE_UNK))
        return out

    def predict(self, state: dict, config: dict, model, options: dict):
        _check_alpha(options)
        inputs = list(options.get("inputs") or ())
        beam = int(options.get("beam") or 1)
        n_best = int(options.get("n_best") or 1)
        if n_best > beam:
            raise UserError(f"--n-best {n_best} needs --beam >= {n_best}")
        # as --stream checks each line (and an argument's UTF-8 under an ASCII locale)
        inputs = [datafile.check_utf8(text, f"input {i}") for i, text in enumerate(inputs, 1)]
        sources = self._sources(state, inputs)
        # the attention weights (output steps x source steps each) only for --plot
        hyps = model.decode(data.source_batch(sources), beam=beam,
                            max_len=options.get("max_len"), alpha=options.get("alpha", ALPHA),
                            attention=bool(options.get("plot")), longest=_longest(state))
        tgt_vocab = Vocabulary(state["target_vocab"])
        level = state["target_level"]
        if options.get("plot"):
            from .plot import attention_plot
            b = 0
            n = int(hyps.lengths[b, 0])
            steps = n + int(hyps.finished[b, 0])  # EOS's row too
            attention_plot(options["plot"], data.symbols(_input_text(state, inputs[0]),
                                                         state["source_level"]),
                           tgt_vocab.decode(hyps.tokens[b, 0, :n]) +
                           (["</s>"] if steps > n else []),
                           hyps.attention[b, 0, :steps, :len(sources[b])])
            click.echo(f"wrote {options['plot']}", err=True)  # as forecast's --plot says
        for b, text in enumerate(inputs):
            # only hypotheses that exist (score -inf: a beam wider than the outputs there
            # are within --max-len)
            found = [{"output": data.join(tgt_vocab.decode(hyps.tokens[b, k, :hyps.lengths[b, k]]),
                                          level),
                      "score": float(hyps.scores[b, k]),
                      "normalised": float(hyps.normalised[b, k]),
                      "finished": bool(hyps.finished[b, k])}
                     for k in range(n_best) if np.isfinite(hyps.scores[b, k])]
            if not found:
                raise UserError(_no_hypothesis(text))
            if options.get("as_json"):
                yield json.dumps({"input": text, "hypotheses": found})
                continue
            shown = _shown_input(state, text)
            if n_best == 1:
                yield found[0]["output"] if len(inputs) == 1 else f"{shown}\t{found[0]['output']}"
            else:
                for k, h in enumerate(found, 1):
                    yield f"{shown}\t{k}\t{h['normalised']:.4f}\t{h['output']}"

    def predict_stream(self, state: dict, config: dict, model, options: dict):
        """Each stdin line is one input; the answer is its best hypothesis."""
        if options.get("inputs") or options.get("plot") or int(options.get("n_best") or 1) > 1:
            raise UserError("--stream reads one input per line from stdin and answers with "
                            "its best hypothesis: drop the input arguments, --plot and "
                            "--n-best")
        _check_alpha(options)
        beam = int(options.get("beam") or 1)
        max_len, alpha = options.get("max_len"), options.get("alpha", ALPHA)
        src_vocab = Vocabulary(state["source_vocab"])  # once, not once per line
        tgt_vocab = Vocabulary(state["target_vocab"])

        def answer(line: str) -> dict:
            sources = self._sources(state, [line], src_vocab)
            # no attention weights: under the default --max-len they take memory that
            # grows with the square of the line's length
            h = model.decode(data.source_batch(sources), beam=beam, max_len=max_len,
                             alpha=alpha, attention=False, longest=_longest(state))
            if not np.isfinite(h.scores[0, 0]):
                raise UserError(_no_hypothesis(line))
            return {"input": line,
                    "output": data.join(tgt_vocab.decode(h.tokens[0, 0, :h.lengths[0, 0]]),
                                        state["target_level"]),
                    "score": float(h.scores[0, 0]),
                    # false when --max-len cut it before its </s>, as predict --json says
                    "finished": bool(h.finished[0, 0])}
        return answer


def _no_hypothesis(text: str) -> str:
    """The error for an input whose best hypothesis has no finite score: the decoder's
    numbers overflowed on it (weights that a diverging training grew too large), since a
    hypothesis of --max-len symbols, finished or not, always exists otherwise."""
    return (f"input {datafile.excerpt(text)}: the model's scores are not finite numbers "
            f"(its weights overflow on this input, {OVERFLOW_ADVICE})")


def _note_header_like_pair(path: str, pairs: list, reading: dict, source_level: str,
                           target_level: str) -> None:
    """A note naming the first line that --header skipped when it reads as a pair like
    the others (data.reads_as_pair), as in a file without a header; a line of column
    names passes silently."""
    number, line = data.skipped_header(path, **data.reading(reading))
    if data.reads_as_pair(line, pairs, source_level, target_level):
        warn_once(f"note: --header skipped line {number} of {data.shown(path)}, "
                  f"{datafile.excerpt(line)}, which reads as a pair like the others, not "
                  f"column names; give --no-header to train on it")


def _max_eval_note(scored: int, whole: int) -> str:
    """eval's note on a split of ``whole`` pairs of which the run's --max-eval scored
    ``scored`` only (eval has no --max-eval of its own)."""
    return (f"note: scored on {scored} of the split's {whole} pairs, spread over it, as "
            f"the run's --max-eval {scored} says: eval has no --max-eval of its own (a "
            f"run trained with --max-eval 0, the default, scores them all)")


def _no_hypothesis_note(count: int, total: int | None) -> str:
    """eval's note on the ``count`` of ``total`` inputs that had no finite hypothesis
    (_no_hypothesis), which the metrics score as empty outputs."""
    of = "" if total is None else f" of the {total}"
    inputs = "input" if count == 1 and not total else "inputs"
    return (f"note: {count}{of} {inputs} had no finite hypothesis, scored as empty "
            f"outputs: the model's scores are not finite numbers (its weights overflow "
            f"on them, {OVERFLOW_ADVICE})")


def _input_text(state: dict, text: str) -> str:
    """A source as the run reads it outside its data file (predict's inputs, --stream's
    lines, an eval --data file's sources): lower-cased for the bundled g2p data, in the
    run's Unicode normalisation form, without blanks around it when the run's data was
    read so (data.read_pairs' strip)."""
    if state.get("strip"):
        text = text.strip()
    if state.get("lowercase_input"):
        text = text.lower()
    return datafile.normalized(text, state.get("unicode"))


def _shown_input(state: dict, text: str) -> str:
    """An input as predict's tab-separated lines show it: at token level with each run of
    whitespace (tabs and line breaks included) as one space, which reads as the same
    tokens and keeps one line per answer and its fields; at character level as given,
    where a blank is a symbol and a tab or line break, which no line of the run's data
    holds, is refused as an unknown symbol before anything is printed."""
    return " ".join(text.split()) if state["source_level"] == "token" else text


def _eval_reading(state: dict) -> dict:
    """read_pairs' rules for an `eval --data` file: the run's, but that a first line is
    skipped when it looks like a header (eval has no --header)."""
    return {**data.reading(state), "header": None}


def _max_eval(config: dict) -> int:
    """The run's --max-eval (0: every pair); UserError for a value no option gives (a
    damaged config.json)."""
    value = config.get("max_eval") or 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"the run's option max_eval is {value!r}: expected a whole number "
                        f">= 0 (is its config.json damaged?)")
    return value


def _longest(state: dict) -> int:
    """The longest training target (symbols), which decoding's default limit does not
    cut (decode.default_max_len): a target may be much longer than twice its source
    (a number -> its words, an abbreviation -> its expansion). 0 for a run saved
    before the state recorded it (the limit is then 2 x the input's length + 10)."""
    return int(state.get("longest_target") or 0)


def _batch_lengths(state: dict, sources: list, targets: list) -> np.ndarray:
    """The length each pair is batched and capped by (length_buckets): the steps
    pair_batch pads it to (data.padded_steps), so a target much longer than its source
    does not pad the short pairs batched with it; runs made before a state recorded
    "batch_by" keep the source lengths, so that they resume on the batches they began."""
    if state.get("batch_by") == "padded":
        return data.padded_steps(sources, targets)
    return np.array([len(src) for src in sources], np.int64)


def _check_alpha(options: dict) -> None:
    """--alpha: click's FloatRange lets nan and inf through; the decoder refuses them."""
    alpha = options.get("alpha", ALPHA)
    if alpha is not None and not (0.0 <= float(alpha) < float("inf")):
        raise UserError(f"--alpha must be a finite number >= 0, got {alpha}")


TASK = Seq2Seq()
