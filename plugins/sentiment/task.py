"""The `sentiment` task: many-to-one text classification from a CSV file.

Model: token ids -> embedding -> (bidirectional) RNN/LSTM/GRU over each row's own length ->
pooling over valid steps (last | mean | max) -> dense -> K logits. The loss is softmax
cross_entropy for every label set, binary included: for two classes a 2-way softmax is the
same model as a sigmoid on the difference of the two logits, and it keeps one code path for
metrics, probabilities and predict.

Dimension legend: T tokens (padded per batch), B batch rows, N rows of a split, K classes.
"""
from __future__ import annotations

import hashlib
import json
import os

import click
import numpy as np

from recurrent import cache, schema
from recurrent import paired as paired_tests
from recurrent.checkpoint import json_text
from recurrent.checks import has_control
from recurrent.datafile import STDIN_PATH, check_utf8, excerpt
from recurrent.errors import TrainingDataUnavailable, UserError
from recurrent.memo import Kept, file_identity, frozen
from recurrent.moved_data import NOT_THE_RUNS_DATA
from recurrent.pretrain import pretrain_language_model
from recurrent.report import TRAIN_OVERLAP, overlap_count
from recurrent.step import VALID_LOSS_RUN, SplitLoss, valid_loss_name

from . import baselines as bl
from . import report
from .dataset import (BUNDLED_NAME, TRAIN_COLUMN_HINT, bundled_path, class_list, label_key,
                      label_number, read_csv, stratified_split)
from .metrics import classification_metrics, cross_entropy, softmax
from .text import (PAD, PAD_ID, TOKENIZER, TOKENIZERS, UNK, UNK_ID, build_vocab, encode,
                   is_blank, length_buckets, pad_batch, tokenize)

STATE_VERSION = 1
# What a saved run's state must hold (check_state; recurrent.schema).
STATE = schema.fields(
    {"data": schema.nullable(str), "sha256": str, "text_column": str, "label_column": str,
     "classes": schema.list_of(str), "vocab": schema.list_of(str),
     "max_tokens": schema.at_least(0), "valid_fraction": schema.above(0),
     "test_fraction": schema.above(0), "split_seed": schema.at_least(0)},
    {"tokenizer": int, "version": int, "split_sizes": dict,
     "valid_loss": schema.one_of(VALID_LOSS_RUN)})
BASELINE_FORMAT = 2  # of the cached baseline models (recurrent.cache)
NB_FORMAT = 2  # of the cached NB logistic regressions (recurrent.cache)
FOLDS_FORMAT = 2  # of the cached cross-fitted fold models (recurrent.cache)
WIDE = "bigrams"  # the default of --wide: the wide part's features
BIGRAM_BUCKETS = 131072  # the wide part's default, and the nb_logreg baseline's features
WIDE_DROPOUT = 0.5  # the wide part's default feature dropout
WIDE_FOLDS = 0  # the fixed wide part's default cross-fitting folds (0: off)
WIDE_FOLDS_EVAL = "full"  # the default of --wide-folds-eval: the model fitted on every text
# texts are cut to their first MAX_TOKENS tokens, for the model and the baselines alike;
# chosen on validation over ten random splits (benchmarks/README.md)
MAX_TOKENS = 400
MAX_VOCAB = 20000  # the default vocabulary size, <pad> and <unk> included
MIN_FREQ = 2  # the default training-split count a token needs to enter the vocabulary
HELD_OUT = 0.1  # the default share of each class in the validation and in the test split
WIDE_SCALE = False  # the default of --wide-scale: a learned scale on the wide logits
PRETRAIN_EPOCHS = 0  # the default of --pretrain-epochs (0: no language-model pretraining)
EMBED_DIM = 64  # the default of --embed-dim
EVAL_BATCH = 256  # rows per forward pass in evaluate/predict (no gradients kept)
# Defaults of the shared training options for this task, with three seeded members
# (recurrent/ensemble.py): chosen on validation over ten random splits of each dataset
# (benchmarks/README.md, benchmarks/sentiment_resplit.py)
DEFAULTS = {"cell": "gru", "hidden": 64, "layers": 1, "bidirectional": True,
            "batch_size": 32, "epochs": 4, "lr": 2e-3, "optimizer": "adam",
            "dropout": 0.0, "ensemble": 3}
FRACTION = click.FloatRange(0, 1, min_open=True, max_open=True)
# what a run's own data is read for, said when it is gone or has changed (split_rows)
SCORE_NEED = "evaluate on a file with --data"
FIT_NEED = "restore the file as it was to see the baselines"
TRAIN_NEED = "training goes on with the data it started with: restore the file as it was"
# the same for a run trained on standard input (`--data -`), which reads its data there
# again: the data is restored by piping it in, not by putting a file back
STDIN_NEEDS = {
    SCORE_NEED: "pipe the data it was trained on into standard input again, or evaluate "
                "on a file with --data",
    FIT_NEED: "pipe the data it was trained on into standard input again to see the "
              "baselines",
    TRAIN_NEED: "training goes on with the data it started with: pipe it into standard "
                "input again",
}

# Small per-process caches: the trainer calls batches()/evaluate()/baselines() many times
# with the same state, and re-reading or refitting each time would dominate short runs
# (the fitted baselines are also kept across runs: _baseline_models()).
_files = Kept(2)  # the training file and one evaluation file at most
_baseline_models = Kept(1)
_nb_models = Kept(2)  # the baseline's features and a run's own at most
_baseline_probs = Kept(8)  # baseline_probabilities' answers
_fold_models = Kept(1)


def _cached_read(path: str, text_column: str, label_column: str | None, tokenizer: int,
                 max_tokens: int, column_hint: str = TRAIN_COLUMN_HINT):
    """(the file's texts and labels, each text's first ``max_tokens`` tokens (0: all)
    under tokenizer version ``tokenizer``, a dict for what is computed from them:
    split_rows' encodings), read once per file version, columns, tokenizer and cut. The
    tokens past the cut, which nothing reads, are not kept."""
    key = (os.path.abspath(path), file_identity(path), text_column, label_column, tokenizer,
           max_tokens)
    if key not in _files:
        data = read_csv(path, text_column, label_column, column_hint, tokenizer)
        _files[key] = (data, [tokenize(t, tokenizer)[:max_tokens or None]
                              for t in data.texts], Kept(8))
    return _files[key]


def _tokenizer(state: dict) -> int:
    """The tokenizer version a run's texts are read with (1: a run made before versions
    were recorded); UserError for a version this code does not know."""
    version = state.get("tokenizer", 1)
    if version not in TOKENIZERS:
        raise UserError(f"this run tokenizes texts with tokenizer version {version!r}, which "
                        f"this recurrent does not know (it knows "
                        f"{', '.join(map(str, TOKENIZERS))}): upgrade recurrent")
    return version


def _vocab_key(vocab: list[str]) -> str:
    return hashlib.sha256("\n".join(vocab).encode("utf-8")).hexdigest()


def _split_key(state: dict) -> dict:
    """What a baseline fitted on a run's training split depends on: the data and which of
    its columns are the texts and the labels, the tokenizer, the vocabulary, the classes,
    the text cut and the split."""
    return {"sha256": state["sha256"], "tokenizer": _tokenizer(state),
            "text_column": state["text_column"],
            "label_column": state["label_column"], "vocab": _vocab_key(state["vocab"]),
            "classes": list(state["classes"]), "max_tokens": state["max_tokens"],
            "split_seed": state["split_seed"], "valid_fraction": state["valid_fraction"],
            "test_fraction": state["test_fraction"]}


def _buckets(config: dict) -> int:
    """The wide part's hashed bigram buckets (0: unigrams only)."""
    if config.get("wide", WIDE) == "bigrams":
        return int(config.get("bigram_buckets", BIGRAM_BUCKETS))
    return 0


def _has(stored: dict | None, shapes: dict) -> bool:
    """A cached entry holds float arrays of these {name: shape}."""
    return stored is not None and all(n in stored and stored[n].shape == s
                                      and stored[n].dtype.kind == "f"
                                      for n, s in shapes.items())


def _fits(stored: dict, vocab_size: int, num_classes: int) -> bool:
    """A cached baseline entry has every array, in the shapes this run needs."""
    shapes = {"majority": (), "prior": (num_classes,), "l2": (),
              "weight": (vocab_size, num_classes), "bias": (num_classes,)}
    return all(name in stored and stored[name].shape == shape
               and stored[name].dtype.kind in "fi" for name, shape in shapes.items())


class SentimentTask:
    name = "sentiment"
    help = "Text classification from CSV (default data: Rotten Tomatoes fresh/rotten snippets)."
    loss = "cross_entropy"
    unused_options = ("seq_len",)  # texts keep their own lengths (cut at --max-tokens)

    # ---- CLI ---------------------------------------------------------------------------
    def options(self) -> list:
        return [
            click.Option(["--data"], type=str, default=None, metavar="FILE",
                         help=f"CSV file (UTF-8, header row; .gz/.bz2/.xz/.zip ok) [default: "
                              f"the bundled {BUNDLED_NAME}]."),
            click.Option(["--text-column"], default="text", show_default=True,
                         help="Column holding the text."),
            click.Option(["--label-column"], default="label", show_default=True,
                         help="Column holding the class label (any label set; labels that "
                              "differ only in case, spacing or Unicode form are refused)."),
            click.Option(["--max-vocab"], type=click.IntRange(min=3), default=MAX_VOCAB,
                         show_default=True,
                         help="Vocabulary size, <pad> and <unk> included."),
            click.Option(["--min-freq"], type=click.IntRange(min=1), default=MIN_FREQ,
                         show_default=True,
                         help="Keep training-split tokens seen at least this often "
                              "(within each text's first --max-tokens)."),
            click.Option(["--max-tokens"], type=click.IntRange(min=1), default=MAX_TOKENS,
                         show_default=True,
                         help="Cut texts to their first N tokens (model, baselines and "
                              "the vocabulary's counts)."),
            click.Option(["--pooling"], type=click.Choice(["last", "mean", "max"]),
                         default="mean", show_default=True,
                         help="How the RNN outputs over a text's valid steps become one vector."),
            click.Option(["--wide"], type=click.Choice(["none", "unigrams", "bigrams"]),
                         default=WIDE, show_default=True,
                         help="Wide part: a sparse linear model over the text's words (and "
                              "hashed word pairs) added to the RNN's logits (see --wide-fit)."),
            click.Option(["--wide-fit"], type=click.Choice(["nb", "joint"]), default="nb",
                         show_default=True,
                         help="nb: the wide part is the nb_logreg baseline's NB logistic "
                              "regression (on --bigram-buckets), fitted before training and "
                              "kept fixed, and the RNN learns what it leaves; joint: trained "
                              "from zero with the RNN."),
            click.Option(["--wide-folds"], type=click.IntRange(min=0), default=None,
                         help=f"With --wide-fit nb: cross-fit the wide part in this many "
                              f"folds, so in training each text gets the logits of a fold "
                              f"model fitted without it (0 = off: the model fitted on every "
                              f"training text, which has seen it) [default: {WIDE_FOLDS}]."),
            click.Option(["--wide-folds-eval"], type=click.Choice(["full", "mean"]),
                         default=WIDE_FOLDS_EVAL, show_default=True,
                         help="With --wide-folds: outside training the wide part is the "
                              "model fitted on every training text (full) or the mean of "
                              "the fold models (mean: logits like those the RNN trained "
                              "beside)."),
            click.Option(["--wide-scale/--no-wide-scale"], default=None,
                         help=f"Multiply the wide part's logits by one learned scalar "
                              f"(starting at 1): the model learns how much to trust a "
                              f"fixed wide part [default: "
                              f"{'wide-scale' if WIDE_SCALE else 'no-wide-scale'}]."),
            click.Option(["--bigram-buckets"], type=click.IntRange(min=1),
                         default=BIGRAM_BUCKETS,
                         show_default=True,
                         help="Hash buckets of the wide part's word pairs."),
            click.Option(["--wide-dropout"], type=click.FloatRange(0, 1, max_open=True),
                         default=None,
                         help=f"Training only: drop each n-gram feature of the wide part "
                              f"with this probability (0 = off) [default: {WIDE_DROPOUT}]."),
            click.Option(["--word-dropout"], type=click.FloatRange(0, 1, max_open=True),
                         default=0.0, show_default=True,
                         help="Training only: replace each token by <unk> with this "
                              "probability, drawn afresh every epoch (0 = off)."),
            click.Option(["--pretrain-epochs"], type=click.IntRange(min=0), default=None,
                         help=f"Before training, pretrain the embedding and the RNN (its "
                              f"first layer, when bidirectional) as language models on the "
                              f"training texts (labels unused) for this many epochs: "
                              f"next-token prediction, and previous-token for the reverse "
                              f"direction (0 = off) [default: {PRETRAIN_EPOCHS}]."),
            click.Option(["--embed-dim"], type=click.IntRange(min=1), default=EMBED_DIM,
                         show_default=True, help="Token embedding size."),
            click.Option(["--valid-fraction"], type=FRACTION, default=HELD_OUT, show_default=True,
                         help="Share of each class held out for validation."),
            click.Option(["--test-fraction"], type=FRACTION, default=HELD_OUT, show_default=True,
                         help="Share of each class held out for the test split."),
            click.Option(["--split-seed"], type=click.IntRange(min=0), default=0,
                         show_default=True,
                         help="Seed of the stratified split (independent of --seed)."),
        ]

    def defaults(self) -> dict:
        return dict(DEFAULTS)

    # ---- data --------------------------------------------------------------------------
    def prepare(self, config: dict) -> dict:
        path = config.get("data") or bundled_path()
        text_column = config.get("text_column") or "text"
        label_column = config.get("label_column") or "label"
        max_tokens = int(config.get("max_tokens", MAX_TOKENS))
        data, tokens, _ = _cached_read(path, text_column, label_column, TOKENIZER, max_tokens)
        classes = class_list(data.labels, path)
        valid_fraction = float(config.get("valid_fraction", HELD_OUT))
        test_fraction = float(config.get("test_fraction", HELD_OUT))
        split_seed = int(config.get("split_seed", 0))
        split = stratified_split(data.labels, valid_fraction, test_fraction, split_seed)
        # counted over what the model reads (the cut tokens): a word seen only beyond the
        # cut would get an embedding no training step moves, where <unk> is trained
        min_freq = int(config.get("min_freq", MIN_FREQ))
        vocab = build_vocab((tokens[i] for i in split["train"]),
                            int(config.get("max_vocab", MAX_VOCAB)), min_freq)
        if len(vocab) == UNK_ID + 1:  # <pad> and <unk> alone
            # every text would read as <unk>s alone: the model could learn only lengths
            raise UserError(f"no token occurs {min_freq} times or more in the training "
                            f"split of {path}'s column {text_column!r}: the vocabulary "
                            f"would hold no word and every text would read as <unk>; lower "
                            f"--min-freq, or choose the column of texts with --text-column")
        return {
            "version": STATE_VERSION,
            "data": os.path.abspath(config["data"]) if config.get("data") else None,
            "sha256": data.sha256,
            "text_column": text_column,
            "label_column": label_column,
            "tokenizer": TOKENIZER,
            "classes": classes,
            "vocab": vocab,
            "max_tokens": max_tokens,
            "valid_fraction": valid_fraction,
            "test_fraction": test_fraction,
            "split_seed": split_seed,
            "split_sizes": {name: int(len(idx)) for name, idx in split.items()},
            "valid_loss": VALID_LOSS_RUN,  # evaluate()'s loss is the run's --loss
        }

    def read_files(self, state: dict) -> dict:
        return {} if state.get("data") is None else {"data": state["data"]}

    def moved_files(self, state: dict, moved: dict) -> dict:
        state = dict(state, data=moved["data"])
        self.split_rows(state, "train", {}, NOT_THE_RUNS_DATA)  # the rows there, checked by hash
        return state

    def check_state(self, state: dict, model_spec: dict) -> None:
        schema.check(state, STATE, "")
        if state["valid_fraction"] + state["test_fraction"] >= 1:
            raise ValueError(f"valid_fraction + test_fraction: expected < 1, got "
                             f"{state['valid_fraction']} + {state['test_fraction']}")
        classes, vocab = state["classes"], state["vocab"]
        if len(set(classes)) != len(classes) or len(classes) < 2:
            raise ValueError(f"classes: expected two or more distinct labels, got "
                             f"{len(classes)} with {len(set(classes))} distinct")
        if vocab[:UNK_ID + 1] != [PAD, UNK]:  # their ids are fixed (text.py)
            raise ValueError(f"vocab: expected to start with {PAD}, {UNK}, got "
                             f"{vocab[:UNK_ID + 1]!r}")
        schema.sized_as(model_spec, "vocab_size", len(vocab), "vocab")
        schema.sized_as(model_spec, "output_size", len(classes), "classes")

    @staticmethod
    def _index(state) -> dict:
        """token -> id of the run's vocabulary."""
        return {tok: i for i, tok in enumerate(state["vocab"])}

    def _encode_all(self, state, token_lists, index=None):
        """Token lists -> id lists; ``index``: the vocabulary's _index, when the caller
        keeps it (predict --stream encodes one line at a time)."""
        index = self._index(state) if index is None else index
        return [encode(toks, index, state["max_tokens"]) for toks in token_lists]

    def _label_ids(self, state, labels, path):
        ids = {c: i for i, c in enumerate(state["classes"])}
        unknown = sorted(set(labels) - set(ids))
        if unknown:
            keys = {label_key(c): c for c in state["classes"]}
            alike = [f"{u!r} for {keys[label_key(u)]!r}" for u in unknown
                     if label_key(u) in keys]
            also = (f" ({', '.join(alike[:5])}: the same label in another case, spacing or "
                    f"Unicode form; write it as the run's)" if alike else "")
            # a number written another way ('1.0' for '1': a spreadsheet's or pandas'
            # float column), which training refuses to read as two classes (class_list)
            numbers = {label_number(c): c for c in state["classes"]}
            spelled = [f"{u!r} for {numbers[label_number(u)]!r}" for u in unknown
                       if label_number(u) is not None and label_number(u) in numbers]
            also += (f" ({', '.join(spelled[:5])}: the same number written another way; "
                     f"write it as the run's)" if spelled else "")
            raise UserError(f"{path} has labels the model was not trained on: "
                            f"{', '.join(map(repr, unknown[:5]))}; trained labels: "
                            f"{', '.join(map(repr, state['classes']))}{also}")
        return np.array([ids[label] for label in labels], dtype=np.int64)

    def split_rows(self, state: dict, split: str, config: dict, need: str = SCORE_NEED):
        """(sequences, y) of a split: token-id lists and class ids (N,) int64.

        split "test" with config["eval_data"] reads that whole file instead (same columns,
        vocabulary and labels as training). ``need``: what the run's own data is read for,
        said after the reason when that file cannot be read as it was at training (gone,
        changed)."""
        if split not in ("train", "valid", "test"):
            raise ValueError(f"split must be train, valid or test, got {split!r}")
        eval_data = config.get("eval_data")
        if split == "test" and eval_data:
            data, tokens, encoded = _cached_read(
                eval_data, state["text_column"], state["label_column"], _tokenizer(state),
                state["max_tokens"], "eval --data needs the run's training column names")
            key = (_vocab_key(state["vocab"]), state["max_tokens"], tuple(state["classes"]))
            if key not in encoded:
                encoded[key] = (self._encode_all(state, tokens),
                                self._label_ids(state, data.labels, eval_data))
            return encoded[key]
        path = state["data"] or bundled_path()
        if path == STDIN_PATH:
            need = STDIN_NEEDS.get(need, need)
        try:
            data, tokens, encoded = _cached_read(path, state["text_column"],
                                                 state["label_column"], _tokenizer(state),
                                                 state["max_tokens"])
        except UserError as e:
            raise TrainingDataUnavailable(f"{e} (the data this run was trained on); "
                                          f"{need}") from None
        if data.sha256 != state["sha256"]:
            raise TrainingDataUnavailable(f"{path} has changed since this run was trained (its split and "
                            f"vocabulary no longer match); {need}")
        # once per split and state: split_rows is called per member, evaluation, baseline
        key = (json.dumps(_split_key(state), sort_keys=True), split)
        if key not in encoded:
            idx = stratified_split(data.labels, state["valid_fraction"],
                                   state["test_fraction"], state["split_seed"])[split]
            y = self._label_ids(state, [data.labels[i] for i in idx], path)
            encoded[key] = (self._encode_all(state, [tokens[i] for i in idx]), y)
        return encoded[key]

    def moot_options(self, config: dict) -> dict:
        """The wide part's options that --wide leaves without effect: --bigram-buckets
        without its word pairs (--wide unigrams or none), --wide-dropout without a wide
        part (--wide none), given 0 too (refused as given, as docs/sentiment.md says)."""
        wide = config.get("wide", WIDE)
        moot = {}
        if wide != "bigrams":
            moot["bigram_buckets"] = (f"the wide part's word pairs (--wide bigrams); --wide "
                                      f"{wide} has none")
        if wide == "none":
            moot["wide_dropout"] = "a wide part (--wide unigrams|bigrams); --wide none has none"
        return moot

    def model_spec(self, state: dict, config: dict) -> dict:
        spec = {"input": "tokens", "vocab_size": len(state["vocab"]),
                "embed_dim": int(config.get("embed_dim", EMBED_DIM)),
                "output": config.get("pooling", "mean"),
                "output_size": len(state["classes"])}
        wide = config.get("wide", WIDE)
        dropout = config.get("wide_dropout")
        fit = config.get("wide_fit", "nb")
        scale = config.get("wide_scale")
        if wide == "none":
            if dropout:
                raise UserError("--wide-dropout needs a wide part (--wide unigrams|bigrams)")
            if scale:
                raise UserError("--wide-scale needs a wide part (--wide unigrams|bigrams)")
            if config.get("wide_folds"):
                raise UserError("--wide-folds needs a wide part (--wide unigrams|bigrams)")
            if config.get("wide_folds_eval", WIDE_FOLDS_EVAL) != "full":
                raise UserError("--wide-folds-eval mean needs a cross-fitted wide part "
                                "(--wide unigrams|bigrams with --wide-folds 2 or more)")
            return spec
        if WIDE_SCALE if scale is None else scale:
            spec["wide_scale"] = True
        dropout = WIDE_DROPOUT if dropout is None else float(dropout)
        folds = config.get("wide_folds")
        if folds == 1:
            raise UserError("--wide-folds: cross-fitting needs 2 folds or more (0 = off)")
        if fit != "nb" and folds:
            raise UserError("--wide-folds cross-fits the NB wide part: it needs --wide-fit nb")
        spec["wide_bigrams"] = _buckets(config)
        if fit == "nb":
            spec["wide_fixed"] = True
            folds = WIDE_FOLDS if folds is None else int(folds)
            if folds:
                self._check_folds(state, folds)
                spec["wide_folds"] = folds
        if config.get("wide_folds_eval", WIDE_FOLDS_EVAL) != "full" and not spec.get("wide_folds"):
            raise UserError("--wide-folds-eval mean needs a cross-fitted wide part "
                            "(--wide-folds 2 or more)")
        if dropout > 0:
            spec["wide_dropout"] = dropout
        return spec

    def _check_folds(self, state: dict, folds: int) -> None:
        """UserError unless every one of ``folds`` cross-fitting folds holds some but not
        all of the training texts (checked here, before the run directory is made, rather
        than when the fold models are fitted)."""
        train_seqs, _ = self.split_rows(state, "train", {})
        if folds > len(train_seqs):  # some fold would be empty; the hash takes a uint64 count
            raise UserError(f"--wide-folds {folds}: more folds than training rows, so some "
                            f"fold holds 0 of {len(train_seqs)} training rows: too few rows "
                            f"to cross-fit {folds} folds")
        try:
            bl.check_folds(bl.sequence_folds(train_seqs, folds), folds)
        except ValueError as e:
            raise UserError(f"--wide-folds {folds}: {e}") from None

    def initial_params(self, state: dict, config: dict) -> dict:
        """The parameters a fresh run starts from that are not drawn at random: the
        language-model pretraining's embedding and RNN (--pretrain-epochs), and the fixed
        wide part's (_wide_params)."""
        values = {}
        epochs = config.get("pretrain_epochs")
        epochs = PRETRAIN_EPOCHS if epochs is None else int(epochs)
        if epochs:
            def batches(rng):  # the training batches as they are, without word dropout
                plain = dict(config, word_dropout=0.0)
                for batch in self.batches(state, "train", plain, rng):
                    yield batch["x"], batch["lengths"]

            pretrained, _ = pretrain_language_model(config, len(state["vocab"]),
                                                    int(config.get("embed_dim", EMBED_DIM)),
                                                    batches, epochs)
            values.update(pretrained)
        values.update(self._wide_params(state, config))
        return values

    def _wide_params(self, state: dict, config: dict) -> dict:
        """With --wide-fit nb: the wide part's weights and the head's bias from the NB
        logistic regression on the wide part's own features (fitted on the training split,
        its L2 chosen on the validation split; cached as the baselines are), so training
        starts as that classifier and the RNN learns what it leaves. With --wide-folds k
        also the k fold models (recurrent/wide.py, cross-fitted rows), at the same L2."""
        spec = self.model_spec(state, config)
        if not spec.get("wide_fixed"):
            return {}
        model = self._nb_model(state, spec["wide_bigrams"])
        values = {"wide.weight": model.weight.astype(np.float32),
                  "head.bias": model.bias.astype(np.float32)}
        if spec.get("wide_folds"):
            fold_weight, fold_bias = self._fold_models(state, spec["wide_bigrams"],
                                                       spec["wide_folds"], model)
            bias = model.bias
            if config.get("wide_folds_eval", WIDE_FOLDS_EVAL) == "mean":
                values["wide.weight"] = fold_weight.mean(axis=0).astype(np.float32)
                bias = fold_bias.mean(axis=0)
                values["head.bias"] = bias.astype(np.float32)
            values["wide.fold_weight"] = fold_weight.astype(np.float32)
            values["wide.fold_bias"] = (fold_bias - bias).astype(np.float32)
        return values

    def _fold_models(self, state: dict, buckets: int, folds: int, full):
        """(weight (k, F, K), bias (k, K)) of the ``folds`` NB logistic regressions
        cross-fitted on the training split at the L2 of ``full`` (the model fitted on all
        of it); once per dataset, split, vocabulary, buckets and folds (this process and
        recurrent.cache)."""
        k, f = len(state["classes"]), len(state["vocab"]) + buckets
        key = dict(_split_key(state), format=FOLDS_FORMAT, buckets=buckets, folds=folds,
                   l2=float(full.l2))
        memo = json.dumps(key, sort_keys=True)
        if memo in _fold_models:
            return _fold_models[memo]
        stored = cache.load("sentiment-nb-folds", key)
        if _has(stored, {"weight": (folds, f, k), "bias": (folds, k)}):
            models = (stored["weight"], stored["bias"])
        else:
            train_seqs, y_train = self.split_rows(state, "train", {})
            x_train = bl.ngram_matrix(train_seqs, len(state["vocab"]), buckets)
            try:
                fits = bl.cross_fit_nb(x_train, y_train, bl.sequence_folds(train_seqs, folds),
                                       folds, k, float(full.l2))
            except ValueError as e:
                raise UserError(f"--wide-folds {folds}: {e}") from None
            models = (np.stack([m.weight for m in fits]), np.stack([m.bias for m in fits]))
            cache.store("sentiment-nb-folds", key, {"weight": models[0], "bias": models[1]})
        _fold_models[memo] = models
        return models

    def batches(self, state: dict, split: str, config: dict, rng: np.random.Generator):
        """Batches of texts of similar length (shuffled for "train", sorted otherwise):
        x (T, B) int64 ids padded with <pad>, lengths (B,), y (B,) class ids. In "train",
        --word-dropout turns tokens into <unk> (word dropout: the model cannot lean on any
        one word, and learns what <unk> means)."""
        sequences, y = self.split_rows(state, split, config, TRAIN_NEED)
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)  # (N,)
        order_rng = rng if split == "train" else None
        word_dropout = float(config.get("word_dropout", 0.0)) if split == "train" else 0.0
        # its own stream (spawning leaves ``rng``, and so the batch order, unchanged)
        drop_rng = rng.spawn(1)[0] if word_dropout else None
        batch_size = int(config.get("batch_size", DEFAULTS["batch_size"]))
        for rows in length_buckets(lengths, batch_size, order_rng):
            x, batch_lengths = pad_batch([sequences[i] for i in rows])
            if word_dropout:
                x = np.where((x != PAD_ID) & (drop_rng.random(x.shape) < word_dropout),
                             UNK_ID, x)
            yield {"x": x, "lengths": batch_lengths, "y": y[rows], "reset": True}

    # ---- model outputs -----------------------------------------------------------------
    def probabilities(self, model, sequences: list[list[int]], loss=None,
                      y=None) -> np.ndarray:
        """(N, K) class probabilities, in the order of ``sequences``; with ``loss`` (a
        recurrent.step.SplitLoss) and the labels ``y`` (N,), each batch's logits are also
        scored by it."""
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        probs = None
        for rows in length_buckets(lengths, EVAL_BATCH, None):
            x, batch_lengths = pad_batch([sequences[i] for i in rows])
            logits, _ = model.forward(x, lengths=batch_lengths)  # (B, K)
            if loss is not None:
                loss.add(logits, y[rows])
            p = softmax(logits)
            if probs is None:
                probs = np.empty((len(sequences), p.shape[1]))
            probs[rows] = p
        return probs

    def evaluate(self, state: dict, split: str, config: dict, model) -> dict:
        sequences, y = self.split_rows(state, split, config)
        # the run's --loss, where it is not cross-entropy: it picks the best checkpoint
        # (cross-entropy for a run saved before its state recorded "valid_loss")
        loss = SplitLoss(self, {**config, "loss": valid_loss_name(state, config, self.loss)})
        probs = self.probabilities(model, sequences, None if loss.own else loss, y)
        metrics = classification_metrics(y, probs.argmax(axis=1), state["classes"])
        metrics["loss"] = cross_entropy(probs, y) if loss.own else loss.value
        if split == "test":
            overlap = self._training_overlap(state, sequences)
            # the run's own test split holds a training text only where its file repeats
            # a text (the split keeps rows apart, not texts): said when there is one
            if overlap is not None and (overlap or config.get("eval_data")):
                metrics[TRAIN_OVERLAP] = overlap
        return metrics

    def _training_overlap(self, state: dict, sequences: list) -> int | None:
        """How many of the test texts (an eval --data file's, or the run's own test
        split's) the run trained on: those whose token
        ids (the model's reading of them: its vocabulary, the first --max-tokens) equal a
        training text's, so that their scores are not held-out ones; None when the run's
        own data cannot be read (gone or changed: the figures stand without it)."""
        try:
            train, _ = self.split_rows(state, "train", {})
        except TrainingDataUnavailable:
            return None
        return overlap_count(sequences, train)

    def baselines(self, state: dict, split: str, config: dict) -> dict:
        """Majority class (its loss: the training class frequencies as probabilities),
        bag-of-words logistic regression, and NB logistic regression over unigrams and
        hashed bigrams (baselines.fit_nb_logistic_regression), fitted on train (L2 chosen
        on valid)."""
        y, probabilities = self.baseline_probabilities(state, split, config)
        out = {}
        for name, probs in probabilities.items():
            out[name] = classification_metrics(y, probs.argmax(axis=1), state["classes"])
            out[name]["loss"] = cross_entropy(probs, y)
        return out

    def paired(self, state: dict, split: str, config: dict, model) -> dict:
        """McNemar's exact test of the model's accuracy against each baseline's on the
        split's texts (recurrent.paired)."""
        sequences, _ = self.split_rows(state, split, config)
        y, probabilities = self.baseline_probabilities(state, split, config)
        ours = self.probabilities(model, sequences).argmax(axis=1) == y
        out = {}
        for name, probs in probabilities.items():
            theirs = probs.argmax(axis=1) == y
            out[name] = paired_tests.result(
                "McNemar", "accuracy", ours.mean() - theirs.mean(),
                paired_tests.mcnemar(ours, theirs), len(y), "texts",
                same=bool(np.array_equal(ours, theirs)))
        return out

    def baseline_probabilities(self, state: dict, split: str, config: dict):
        """(labels (N,), {baseline name: (N, K) class probabilities}) on ``split``: the
        majority baseline's are the training class frequencies (whose argmax is the
        majority class, ties to the lowest id as baselines.majority_class)."""
        eval_data = config.get("eval_data") if split == "test" else None
        # once per split, state and evaluation file: every member and report asks again
        key = (json.dumps(_split_key(state), sort_keys=True), split,
               eval_data and (os.path.abspath(eval_data), file_identity(eval_data)))
        if key not in _baseline_probs:
            _, prior, logreg = self._baseline_models(state)
            sequences, y = self.split_rows(state, split, config)
            nb = self._nb_model(state, BIGRAM_BUCKETS)
            probs = {
                "majority": np.tile(prior, (len(y), 1)),
                "bow_logreg": logreg.predict_proba(bl.bag_of_words(sequences,
                                                                   len(state["vocab"]))),
                "nb_logreg": nb.predict_proba(bl.ngram_matrix(
                    sequences, len(state["vocab"]), BIGRAM_BUCKETS))}
            frozen(probs.values())  # shared by every caller
            _baseline_probs[key] = (y, probs)
        y, probs = _baseline_probs[key]
        return y, dict(probs)

    def _nb_model(self, state: dict, buckets: int):
        """The NB logistic regression over unigrams and ``buckets`` hashed bigrams (0:
        unigrams only), fitted on the training split with L2 chosen on the validation
        split; once per dataset, split, vocabulary and buckets (this process and
        recurrent.cache)."""
        k, f = len(state["classes"]), len(state["vocab"]) + buckets
        key = dict(_split_key(state), format=NB_FORMAT, buckets=buckets,
                   l2_grid=list(bl.L2_GRID))
        memo = json.dumps(key, sort_keys=True)
        if memo in _nb_models:
            return _nb_models[memo]
        stored = cache.load("sentiment-nb-logreg", key)
        if _has(stored, {"l2": (), "weight": (f, k), "bias": (k,)}):
            model = bl.LogisticRegression(float(stored["l2"]))
            model.weight, model.bias = stored["weight"], stored["bias"]
        else:
            v = len(state["vocab"])
            (train_seqs, y_train), (valid_seqs, y_valid) = (
                self.split_rows(state, split, {}, FIT_NEED) for split in ("train", "valid"))
            model = bl.fit_nb_logistic_regression(
                bl.ngram_matrix(train_seqs, v, buckets), y_train,
                bl.ngram_matrix(valid_seqs, v, buckets), y_valid, k)
            cache.store("sentiment-nb-logreg", key, {
                "l2": np.float64(model.l2), "weight": model.weight, "bias": model.bias})
        _nb_models[memo] = model
        return model

    def _baseline_models(self, state: dict):
        """(majority class, training class frequencies (K,), fitted BoW logistic
        regression), fitted once per dataset, split and vocabulary: kept for this process
        and in the user's cache (recurrent.cache), so later runs on the same data reuse
        them instead of refitting."""
        k, v = len(state["classes"]), len(state["vocab"])
        key = dict(_split_key(state), format=BASELINE_FORMAT, l2_grid=list(bl.L2_GRID))
        memo = json.dumps(key, sort_keys=True)
        if memo in _baseline_models:
            return _baseline_models[memo]
        stored = cache.load("sentiment-baselines", key)
        if stored is not None and _fits(stored, v, k):
            logreg = bl.LogisticRegression(float(stored["l2"]))
            logreg.weight, logreg.bias = stored["weight"], stored["bias"]
            models = (int(stored["majority"]), stored["prior"], logreg)
        else:
            train_seqs, y_train = self.split_rows(state, "train", {}, FIT_NEED)
            valid_seqs, y_valid = self.split_rows(state, "valid", {}, FIT_NEED)
            logreg = bl.fit_logistic_regression(
                bl.bag_of_words(train_seqs, v), y_train,
                bl.bag_of_words(valid_seqs, v), y_valid, k)
            prior = np.bincount(y_train, minlength=k) / len(y_train)
            models = (bl.majority_class(y_train, k), prior, logreg)
            cache.store("sentiment-baselines", key, {
                "majority": np.int64(models[0]), "prior": prior, "l2": np.float64(logreg.l2),
                "weight": logreg.weight, "bias": logreg.bias})
        _baseline_models[memo] = models
        return models

    def format_report(self, state: dict, metrics: dict, baselines: dict) -> list[str]:
        """`recurrent eval` text: overall scores, labelled per-class rows and confusion
        matrices of the model and of each baseline (see report.py)."""
        return report.format_report(state["classes"], metrics, baselines)

    # ---- predict -----------------------------------------------------------------------
    def predict_options(self) -> list:
        return [
            click.Argument(["texts"], nargs=-1),
            click.Option(["--data"], type=str, default=None, metavar="FILE",
                         help="CSV file whose text column to classify (one output line per row)."),
            click.Option(["--text-column"], default=None,
                         help="Text column of --data [default: the training text column]."),
            click.Option(["--id-column"], default=None,
                         help="Column of --data whose value starts each output line (JSON: "
                              "\"id\"), to join the predictions to the file's rows "
                              "[default: none; one line per row, in the file's order]."),
            click.Option(["--json", "as_json"], is_flag=True,
                         help="One JSON object per line instead of tab-separated text."),
        ]

    def predict_stream(self, state: dict, config: dict, model, options: dict):
        """Each stdin line is one text, answered as `predict --json` answers a text
        (texts are independent: nothing is carried from one line to the next)."""
        if (options.get("texts") or options.get("data") or options.get("text_column")
                or options.get("id_column")):
            raise UserError("--stream reads one text per line from stdin: drop the text "
                            "arguments, --data, --text-column and --id-column")
        classes, tokenizer = state["classes"], _tokenizer(state)
        index = self._index(state)  # once: a line of a few words reads a few entries

        def answer(line):  # bytes that are not UTF-8: refused by the CLI's stream loop
            if is_blank(line, tokenizer):
                raise UserError("the line is empty: one text per line")
            p = self.probabilities(model, self._encode_all(
                state, [tokenize(line, tokenizer)], index))[0]
            return _answer(classes, p, line)

        return answer

    def predict(self, state: dict, config: dict, model, options: dict):
        """One line per text, tab-separated: label, then each class's probability
        (name=probability, space-separated: _score_name), then the text; with
        --id-column, the row's id first."""
        texts = list(options.get("texts") or ())
        id_column = options.get("id_column")
        for flag, name in (("--text-column", "text_column"), ("--id-column", "id_column")):
            if options.get(name) and not options.get("data"):
                raise UserError(f"{flag} {options[name]} names a column of --data FILE: "
                                f"give --data, or drop {flag}")
        if id_column and texts:
            raise UserError("--id-column gives the --data rows' ids; text arguments have "
                            "none: put them in the file, or drop --id-column")
        tokenizer = _tokenizer(state)
        texts = [check_utf8(text, f"text argument {i}") for i, text in enumerate(texts, 1)]
        for i, text in enumerate(texts, 1):
            if is_blank(text, tokenizer):
                raise UserError(f"text argument {i} is empty")
        ids = None
        if options.get("data"):
            column = options.get("text_column") or state["text_column"]
            # a file of bare lines has no header: its first text reads as a column name
            hint = ("choose with --text-column" + ("/--id-column" if id_column else "")
                    + "; texts one per line, without a header: --stream < FILE")
            rows = read_csv(options["data"], column, None, hint, tokenizer, id_column)
            texts += rows.texts
            ids = rows.ids
        if ids is not None and not options.get("as_json"):
            for key in ids:
                if has_control(key):
                    raise UserError(f"--id-column {id_column}: the id {excerpt(key)} holds "
                                    f"a tab or line break or another control character, "
                                    f"which would break the output's tab-separated lines: "
                                    f"use --json")
        if not texts:
            raise UserError("nothing to classify: give texts as arguments or --data FILE")
        classes = state["classes"]
        # a generator: each text's tokens are dropped once encoded, as a large file's
        # token lists would take many times the memory of its text
        probs = self.probabilities(model, self._encode_all(
            state, (tokenize(t, tokenizer) for t in texts)))
        for i, (text, p) in enumerate(zip(texts, probs)):
            label = classes[int(p.argmax())]
            if options.get("as_json"):
                answer = _answer(classes, p, text)
                if ids is not None:
                    answer = {"id": ids[i], **answer}
                yield json_text(answer)  # NaN as null, as --stream
            else:
                scores = " ".join(f"{_score_name(c)}={q:.3f}" for c, q in zip(classes, p))
                flat = " ".join(text.split())  # tabs/newlines would break one line per text
                key = "" if ids is None else f"{ids[i]}\t"
                yield f"{key}{label}\t{scores}\t{flat}"


def _score_name(name: str) -> str:
    """A class's name in predict's space-separated ``name=probability`` field: as it is,
    or as a JSON string ("very negative"=0.250) when it holds a blank, an "=" or a double
    quote, which would make the field read as other names; the line's first field, the
    label, is a whole tab-separated field and needs no quotes."""
    if any(c.isspace() or c in '="' for c in name):
        return json.dumps(name, ensure_ascii=False)
    return name


def _answer(classes, p, text):
    """The JSON answer for one text: its label, each class's probability, the text."""
    return {"label": classes[int(p.argmax())],
            "probabilities": dict(zip(classes, map(float, p))), "text": text}


TASK = SentimentTask()
