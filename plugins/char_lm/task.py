"""The char-lm task: next-character prediction on a UTF-8 text, sampled from the CLI.

Dimension legend: N characters, T window (seq_len), B streams (batch_size), V vocabulary.

Data flow: prepare() reads --data (default: the bundled Shakespeare plays), builds the
sorted character vocabulary and fixes a contiguous 95/5 train/validation split (the
validation text is the END of the corpus, unseen in training). The run state records the
vocabulary, the split sizes and a content fingerprint, so eval/predict after a checkpoint
round trip use exactly the training vocabulary and notice a changed data file. The text is
read in Unicode NFC (datafile.TEXT_FORM, recorded as "unicode"), as are eval --data files,
--prime and --stream lines, so that a composed and a decomposed accent are one character
(runs saved before it read text as it is). The vocabulary covers the whole file (as
char-rnn does), so every validation character has an id; one that never occurs in
training simply gets a low probability.
Model: token embedding -> recurrent stack -> V logits per step, cross-entropy.
Split "test" is the file given to `recurrent eval RUN --data FILE`; the corpus itself has
no third part (``splits``), so `recurrent eval RUN` scores the validation split and says so.
"""
from __future__ import annotations

import math
import os

import click
import numpy as np

from recurrent import datafile, schema
from recurrent.errors import TrainingDataUnavailable, UserError
from recurrent.figures import counted
from recurrent.memo import file_identity
from recurrent.moved_data import not_the_runs_data
from recurrent.report import TRAIN_OVERLAP, generic_report
from recurrent.state import state_arrays
from recurrent.step import VALID_LOSS_RUN, SplitLoss, valid_loss_name

from . import metrics, sampling, streams, text

VALID_FRACTION = 0.05  # the end of the corpus held out for validation
EVAL_STREAMS = 32  # streams scored side by side in evaluate()
STREAM_TOP_K = 5  # next characters in each answer of `predict --stream`
LENGTH = 500  # default predict --length
TEMPERATURE = 0.8  # default predict --temperature
EVAL_WARMUP = 200  # characters each later stream reads before scoring
EVAL_CHUNK = 512  # steps per forward call in evaluate(): bounds the (T, S, V) logits
# at most this many logits per forward call in evaluate() and in reading a --prime (64 MB)
EVAL_LOGITS = 1 << 24
EMBED_DIM = 64  # default --embed-dim

# What a saved run's state must hold (check_state; recurrent.schema).
STATE = schema.fields({"data": str, "fingerprint": str, "vocab": schema.list_of(str),
                       "n_train": schema.at_least(1)},
                      {"max_chars": schema.at_least(0), "n_chars": schema.at_least(2),
                       "line_break": schema.one_of("\n", "\r\n"),
                       "unicode": schema.one_of(*datafile.FORMS),
                       "valid_loss": schema.one_of(VALID_LOSS_RUN)})

# Defaults of the shared training options for this task: the shortest training found to
# reach a validation loss <= 1.5 nats/char on the bundled corpus, with a margin for other
# initial weights (the sweep behind them: benchmarks/README.md, "char-lm defaults").
DEFAULTS = {
    "cell": "lstm",
    "hidden": 256,
    "layers": 1,
    "seq_len": 64,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 0.01,
    "schedule": "cosine",
    "clip_norm": 5.0,
    "epochs": 4,
}
# Defaults of single cells where DEFAULTS train them far from the others, chosen as
# DEFAULTS were (benchmarks/README.md, "char-lm defaults").
CELL_DEFAULTS = {"gru": {"lr": 0.005}, "rnn_tanh": {"lr": 0.003}, "rnn_relu": {"lr": 0.003}}


class _Corpus:
    """The decoded text of one file and its encoded ids, cached while the file is
    unchanged (recurrent.memo.file_identity): every epoch and evaluation asks again, and
    decoding, hashing and encoding the whole file each time would dominate short runs."""

    _text: dict = {}  # (path, file identity, form) -> str; one corpus at a time: large
    _ids: dict = {}  # (text key, max_chars, vocab, fingerprint, form) -> (N,) int64 ids

    @staticmethod
    def _key(path: str):
        identity = file_identity(path)  # None: read_text reports the problem
        return None if identity is None else (path, identity)

    @classmethod
    def text(cls, path: str, form: str | None = None, label: str | None = None) -> str:
        """The file's text in the Unicode normalisation form ``form`` (None: as it is);
        ``label``: how errors name the file (text.read_text)."""
        key = cls._key(path)
        key = None if key is None else (*key, form)
        if key is not None and key in cls._text:
            return cls._text[key]
        value = text.read_text(path, form, label)
        if key is not None:
            cls._text = {key: value}
        return value

    @classmethod
    def ids(cls, path: str, max_chars: int, vocab: list, fingerprint: str,
            form: str | None = None, moved: bool = False) -> np.ndarray:
        """Ids of the (first max_chars characters of the) file read in ``form`` (text());
        a UserError if its content no longer has ``fingerprint`` (``moved``: the file is
        given as the new place of the run's data, and is then not that data)."""
        key = (cls._key(path), max_chars, tuple(vocab), fingerprint, form)
        if key[0] is not None and key in cls._ids:
            return cls._ids[key]
        corpus = cls.text(path, form)
        if max_chars:
            corpus = corpus[:max_chars]
        if datafile.fingerprint(corpus) != fingerprint:
            why = "content fingerprint differs"
            raise UserError(not_the_runs_data(path, why) if moved else
                            f"{path} changed since this run was trained ({why})")
        ids = text.Vocabulary(vocab).encode(corpus, path)
        ids.setflags(write=False)  # shared by every caller
        if key[0] is not None:
            cls._ids = {key: ids}
        return ids


def _int_option(config: dict, key: str, default: int, minimum: int) -> int:
    value = config.get(key)
    if value is None:
        value = default
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise UserError(f"--{key.replace('_', '-')} must be an integer, got {value!r}") from None
    if value < minimum:
        raise UserError(f"--{key.replace('_', '-')} must be >= {minimum}, got {value}")
    return value


def _min_chars(batch_size: int, seq_len: int) -> int:
    """Smallest file length whose split holds one training window of B streams x T chars
    (B*T + 1 characters) and one validation window (T + 1 characters)."""
    n = max(math.ceil((batch_size * seq_len + 1) / (1 - VALID_FRACTION)),
            math.ceil((seq_len + 1) / VALID_FRACTION))
    while not _split_ok(n, batch_size, seq_len):
        n += 1
    while n > 1 and _split_ok(n - 1, batch_size, seq_len):
        n -= 1
    return n


def _split_sizes(n: int) -> tuple[int, int]:
    n_valid = int(n * VALID_FRACTION)
    return n - n_valid, n_valid


def _split_ok(n: int, batch_size: int, seq_len: int) -> bool:
    n_train, n_valid = _split_sizes(n)
    return n_train >= batch_size * seq_len + 1 and n_valid >= seq_len + 1


def _too_short(name: str, n: int, whole: int, max_chars: int, batch_size: int,
               seq_len: int) -> str:
    """The refusal of a text of n characters (of a file of ``whole``) too short to split
    for --batch-size x --seq-len: it names the part that is short (the training text or
    the validation text) and, when --max-chars cut the file, says so."""
    needed = _min_chars(batch_size, seq_len)
    chars = counted(n, "character")
    if max_chars and max_chars < whole:
        what = f"--max-chars {max_chars} keeps {chars} of {name} (which has {whole})"
        more = "raise --max-chars" if needed <= whole else "use more text"
    else:
        what, more = f"{name} has {chars}", "use more text"
    n_train, n_valid = _split_sizes(n)
    if n_train < batch_size * seq_len + 1:
        return (f"{what}, shorter than one training window: --batch-size {batch_size} x "
                f"--seq-len {seq_len} needs at least {needed} (lower them or {more})")
    return (f"{what}, too short for validation: its last "
            f"{VALID_FRACTION:.0%} ({n_valid} characters) must hold one --seq-len window "
            f"of {seq_len} + 1 characters, so --seq-len {seq_len} with --batch-size "
            f"{batch_size} needs at least {needed} (lower --seq-len or {more})")


class CharLM:
    name = "char-lm"
    help = "Character-level language model: train on a UTF-8 text, sample new text."
    loss = "cross_entropy"
    causal = True  # the targets are the next characters of the input
    splits = ("train", "valid")  # the corpus is cut in two; `eval --data FILE` tests
    cell_defaults = CELL_DEFAULTS

    # ---- CLI surface -------------------------------------------------------------------

    def options(self) -> list:
        return [
            click.Option(["--data"], default=text.BUNDLED, show_default=True, metavar="FILE",
                         help="UTF-8 text file (plain, .gz, .bz2, .xz or .zip); the default "
                              "is the bundled Shakespeare plays (2.2 MB). Last "
                              f"{VALID_FRACTION:.0%} = validation."),
            click.Option(["--max-chars"], type=click.IntRange(min=0), default=0,
                         show_default=True,
                         help="Use only the first N characters of the data (0 = all)."),
            click.Option(["--embed-dim"], type=click.IntRange(min=1), default=EMBED_DIM,
                         show_default=True, help="Character embedding size."),
        ]

    def defaults(self) -> dict:
        return dict(DEFAULTS)

    def moot_options(self, config: dict) -> dict:
        """--tbptt K of at least --seq-len: each window is already one part of at most K
        steps, so the run would be full BPTT with a K saved as if it truncated."""
        k = int(config.get("tbptt") or 0)
        seq_len = int(config.get("seq_len") or DEFAULTS["seq_len"])
        if k >= seq_len:
            return {"tbptt": f"parts shorter than the --seq-len windows ({seq_len} "
                             f"characters); --tbptt {k} leaves each window whole (full "
                             f"BPTT)"}
        return {}

    def predict_options(self) -> list:
        return [
            click.Option(["--prime"], default=None,
                         help="Text to start from (default: a line break, as the training "
                              "text writes them, or the vocabulary's first character "
                              "(lowest code point) when it has none; with --stream: "
                              "nothing)."),
            click.Option(["--length"], type=click.IntRange(min=0), default=LENGTH,
                         show_default=True, help="Characters to generate."),
            click.Option(["--temperature"], type=click.FloatRange(min=0.0), default=TEMPERATURE,
                         show_default=True, help="Sampling temperature; 0 = always argmax."),
            click.Option(["--top-k"], type=click.IntRange(min=1), default=None,
                         help=f"Sample only among the K most likely characters (with "
                              f"--stream: answer with them, default {STREAM_TOP_K})."),
            click.Option(["--seed"], type=click.IntRange(min=0), default=None,
                         help="Random seed: the same seed gives the same text (default: "
                              "a new text each time)."),
        ]

    # ---- data ---------------------------------------------------------------------------

    def prepare(self, config: dict) -> dict:
        data = config.get("data") or text.BUNDLED
        path = text.resolve_path(data)
        name = text.shown(data)
        corpus = _Corpus.text(path, datafile.TEXT_FORM, name)
        whole = len(corpus)
        max_chars = _int_option(config, "max_chars", 0, 0)
        if max_chars:
            corpus = corpus[:max_chars]
        batch_size = _int_option(config, "batch_size", DEFAULTS["batch_size"], 1)
        seq_len = _int_option(config, "seq_len", DEFAULTS["seq_len"], 1)
        n = len(corpus)
        if not _split_ok(n, batch_size, seq_len):
            raise UserError(_too_short(name, n, whole, max_chars, batch_size, seq_len))
        vocab = text.Vocabulary.from_text(corpus)
        n_train, n_valid = _split_sizes(n)
        return {
            "data": data if data == text.BUNDLED else path,
            "max_chars": max_chars,
            "fingerprint": datafile.fingerprint(corpus),
            "vocab": vocab.chars,
            "n_chars": n,
            "n_train": n_train,
            "n_valid": n_valid,
            # the form the text, eval --data files, --prime and --stream lines are read in
            "unicode": datafile.TEXT_FORM,
            "valid_loss": VALID_LOSS_RUN,  # evaluate()'s loss is the run's --loss
            # the break predict --stream reads between two lines: the text's own (CRLF when
            # most of its lines end so); absent: "\n"
            **({"line_break": "\r\n"} if 2 * corpus.count("\r\n") > corpus.count("\n")
               else {}),
        }

    def read_files(self, state):
        return {} if state["data"] == text.BUNDLED else {"data": state["data"]}

    def moved_files(self, state, moved):
        state = dict(state, data=moved["data"])
        self._corpus_ids(state, {}, moved=True)  # the text there, checked by fingerprint
        return state

    def check_state(self, state: dict, model_spec: dict) -> None:
        schema.check(state, STATE, "")
        if "n_chars" in state and state["n_train"] > state["n_chars"] - 2:
            raise ValueError(f"n_train: expected at most n_chars - 2 = {state['n_chars'] - 2} "
                             f"(the validation text needs two characters), got "
                             f"{state['n_train']}")
        try:
            text.Vocabulary(state["vocab"])
        except ValueError as e:
            raise ValueError(f"vocab: {e}") from None
        for key in ("vocab_size", "output_size"):
            schema.sized_as(model_spec, key, len(state["vocab"]), "vocab")

    def _corpus_ids(self, state: dict, config: dict, moved: bool = False) -> np.ndarray:
        """(N,) int64 ids of the training corpus, checked against the run state;
        TrainingDataUnavailable when it cannot be read as it was (gone, changed), saying
        that it is the run's training data: under `eval --data FILE` the message names a
        file other than FILE. ``moved``: _Corpus.ids'."""
        path = text.resolve_path(state["data"])
        try:
            try:
                _Corpus.text(path, state.get("unicode"))  # read first, then ids() reuses it
            except UserError as e:
                if config.get("eval_data") or moved or not os.path.exists(path):
                    raise  # a file not found says what it was in its own words
                # a command given no file whose run's text no longer reads (emptied, or
                # standard input given nothing): named as the run's data, as seq2seq's is
                raise UserError(f"{e} (the data this run was trained on)") from None
            return _Corpus.ids(path, state.get("max_chars") or 0, state["vocab"],
                               state["fingerprint"], state.get("unicode"), moved)
        except UserError as e:
            if not config.get("eval_data"):
                raise TrainingDataUnavailable(str(e)) from None
            raise TrainingDataUnavailable(f"{e}; that is the data this run was trained "
                                          f"on") from None

    def split_ids(self, state: dict, split: str, config: dict) -> np.ndarray:
        """Ids of one split. "test" is the --data file of `recurrent eval`, read whole with
        the run's vocabulary; without one it falls back to the validation split."""
        if split == "test" and config.get("eval_data"):
            path = text.resolve_path(config["eval_data"])
            name = text.shown(config["eval_data"])
            ids = text.Vocabulary(state["vocab"]).encode(
                _Corpus.text(path, state.get("unicode"), name), name)
            if len(ids) < 2:
                raise UserError(f"{name} has {len(ids)} character(s): evaluation needs at "
                                "least 2 (one to read, one to predict)")
            return ids
        if split not in ("train", "valid", "test"):
            raise UserError(f"unknown split {split!r}: char-lm has train, valid and test")
        ids = self._corpus_ids(state, config)
        n_train = state["n_train"]
        return ids[:n_train] if split == "train" else ids[n_train:]

    def batches(self, state: dict, split: str, config: dict, rng: np.random.Generator):
        ids = self.split_ids(state, split, config)
        batch_size = _int_option(config, "batch_size", DEFAULTS["batch_size"], 1)
        seq_len = _int_option(config, "seq_len", DEFAULTS["seq_len"], 1)
        if split == "train":
            return streams.stream_windows(ids, batch_size, seq_len, rng)
        # Evaluation splits are short: fewer streams so at least one window fits.
        rows = max(1, min(batch_size, (len(ids) - 1) // seq_len))
        return streams.stream_windows(ids, rows, min(seq_len, len(ids) - 1), None)

    # ---- model and metrics --------------------------------------------------------------

    def model_spec(self, state: dict, config: dict) -> dict:
        vocab_size = len(state["vocab"])
        return {
            "input": "tokens",
            "vocab_size": vocab_size,
            "embed_dim": _int_option(config, "embed_dim", EMBED_DIM, 1),
            "output": "sequence",
            "output_size": vocab_size,
        }

    def evaluate(self, state: dict, split: str, config: dict, model) -> dict:
        ids = self.split_ids(state, split, config)
        x, y, mask = streams.eval_streams(ids, EVAL_STREAMS, EVAL_WARMUP)  # (W+L, S) each
        vocab_size = len(state["vocab"])
        total, correct, count = 0.0, 0, 0
        # the run's --loss, where it is not cross-entropy: it picks the best checkpoint
        # (cross-entropy for a run saved before its state recorded "valid_loss")
        loss = SplitLoss(self, {**config, "loss": valid_loss_name(state, config, self.loss)})
        model_state = None
        # fewer steps per call for a large vocabulary: the logits stay under EVAL_LOGITS
        chunk = max(1, min(EVAL_CHUNK, EVAL_LOGITS // (x.shape[1] * vocab_size)))
        overflowed = False
        for start in range(0, x.shape[0], chunk):
            rows = slice(start, start + chunk)
            logits, model_state = model.forward(x[rows], state=model_state)  # (t, S, V)
            # a state that overflowed (an unbounded cell with weights grown too large)
            # cannot start the next chunk: the figures of this split are then no numbers
            if not all(np.isfinite(a).all() for a in state_arrays(model_state)):
                overflowed = True
                break
            keep = mask[rows].ravel()  # (t*S,)
            flat = np.asarray(logits).reshape(-1, vocab_size)  # (t*S, V)
            targets = y[rows].ravel()
            if not keep.all():  # the warm-up steps: a copy of the kept rows only then
                flat, targets = flat[keep], targets[keep]
            if not loss.own:
                loss.add(flat, targets)
            nll, hit = metrics.logits_nll(flat, targets)
            total += float(nll.sum())
            correct += int(hit.sum())
            count += int(keep.sum())
        if overflowed:
            out = {key: math.nan for key in ("loss", "bits_per_char", "perplexity",
                                             "accuracy")}
            out["chars"] = int(mask.sum())
        else:
            out = metrics.summarize(total, correct, count)
            if not loss.own:  # bits per char, perplexity and accuracy stay cross-entropy's
                out["loss"] = loss.value
        if split == "test" and config.get("eval_data"):  # a file of the user's
            try:  # left out when the run's own data cannot be read: the figures stand
                train_ids = self.split_ids(state, "train", config)
            except TrainingDataUnavailable:
                train_ids = None
            if train_ids is not None:
                out[TRAIN_OVERLAP] = metrics.passages_seen(train_ids, ids)
        return out

    def format_report(self, state: dict, scores: dict, baselines: dict) -> list[str]:
        """eval's table (report.generic_report), under a note when an eval --data file's
        characters repeat passages of the training split."""
        return generic_report(scores, baselines, scores.get("chars"),
                              f"scored characters (each with the {metrics.PASSAGE - 1} "
                              f"before it)")

    def baselines(self, state: dict, split: str, config: dict) -> dict:
        train_ids = self.split_ids(state, "train", config)
        return metrics.baseline_metrics(train_ids, self.split_ids(state, split, config),
                                        len(state["vocab"]))

    # ---- sampling -----------------------------------------------------------------------

    def predict_stream(self, state: dict, config: dict, model, options: dict):
        """Each stdin line continues the text; the answer is the --top-k (default
        STREAM_TOP_K) most likely next characters (sampling.next_char_stream)."""
        return sampling.next_char_stream(model, text.Vocabulary(state["vocab"]),
                                         int(options.get("top_k") or STREAM_TOP_K),
                                         _given_prime(options),
                                         state.get("line_break", "\n"),
                                         state.get("unicode"))

    def predict(self, state: dict, config: dict, model, options: dict):
        vocab = text.Vocabulary(state["vocab"])
        prime = _given_prime(options)
        # no --prime: a line break as the training text writes it ("\n" or "\r\n"), or,
        # for a vocabulary without one, its first character (the --prime help says so)
        if prime is None:
            line_break = state.get("line_break", "\n")
            prime = next((b for b in (line_break, "\n") if not vocab.unknown(b)),
                         vocab.chars[0])
        prime = datafile.normalized(datafile.check_utf8(prime, "--prime"),
                                    state.get("unicode"))
        prime_ids = vocab.encode(prime, "--prime")  # names characters outside the vocabulary
        length = options.get("length", LENGTH)
        temperature = options.get("temperature", TEMPERATURE)
        top_k = options.get("top_k")
        if length is None or int(length) < 0:
            raise UserError(f"--length must be >= 0, got {length}")
        if temperature is None or not float(temperature) >= 0.0 \
                or not math.isfinite(float(temperature)):
            raise UserError(f"--temperature must be a finite number >= 0, got {temperature}")
        if top_k is not None and int(top_k) < 1:
            raise UserError(f"--top-k must be >= 1, got {top_k}")
        new_ids = sampling.each_generated(model, prime_ids, int(length),
                                          float(temperature),
                                          None if top_k is None else int(top_k),
                                          options.get("seed"),
                                          prime_chunk=max(1, EVAL_LOGITS // len(vocab)))
        # each line as soon as it ends (the prime's before the first draw), so a long
        # text shows as it is generated: the command prints each with a "\n" after it,
        # which gives the text as it is, with a "\n" added only when it does not end
        # with one (as a text file ends)
        *done, last = prime.split("\n")
        yield from done
        pending = [last]
        for k in new_ids:
            char = vocab.chars[k]
            if char == "\n":
                yield "".join(pending)
                pending = []
            else:
                pending.append(char)
        if any(pending):
            yield "".join(pending)


def _given_prime(options: dict) -> str | None:
    """--prime as given to predict or predict --stream (None: not given). An empty one is
    refused in both: a script's unset variable would otherwise be read as no prime."""
    prime = options.get("prime")
    if prime == "":
        raise UserError("--prime must not be empty: give text, or leave --prime out")
    return prime


TASK = CharLM()
