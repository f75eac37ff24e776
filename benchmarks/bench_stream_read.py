"""One long stream: StreamPool.read(id, xs) against a step_arrays call per input.

A character model reading a long line (char-lm `predict --stream`) advances one stream
by many steps. Stepping it input by input costs a Python round trip, a gather, a scatter
and a one-row kernel call per character; read() runs each layer's cell over up to
recurrent.streams.READ_CHUNK steps per kernel call. The model is the char-lm task's
default shape (recurrent_plugins.char_lm.task DEFAULTS: cell, hidden size, layers, and
its embedding size) over a vocabulary of V characters, freshly initialised (speed does not
depend on training); the text is random ids.

    python benchmarks/bench_stream_read.py --chars 200000 --rounds 3

Both sides read the same ids into their own pool and must end in the same state (1e-4)
and give the same next-character probabilities before anything is timed. Then
interleaved rounds (steps, read, steps, read, ...), one whole text per block; the table
gives the median seconds per side, characters per second and the ratio of the medians,
one thread (BLAS pinned to one thread, num_threads=1), with threadpoolctl's BLAS kernel (take
the CPU model from lscpu).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import recurrent
from recurrent.model import SequenceModel
from recurrent_plugins.bench import blas_text, environment
from recurrent_plugins.char_lm.task import DEFAULTS, EMBED_DIM


def make_model(vocab, seed=0):
    spec = {"input": "tokens", "vocab_size": vocab, "embed_dim": EMBED_DIM,
            "output": "sequence", "output_size": vocab}
    model = SequenceModel(spec, cell=DEFAULTS["cell"], hidden_size=DEFAULTS["hidden"],
                          num_layers=DEFAULTS["layers"], seed=seed)
    model.eval()
    return model


def by_steps(pool, ids):
    for i in ids[:-1]:
        pool.step_arrays([0], [i], outputs=False)
    return pool.step_arrays([0], [ids[-1]])[0]


def by_read(pool, ids):
    return pool.read(0, ids)


def fresh(model):
    pool = recurrent.StreamPool(model, capacity=1, softmax=True, num_threads=1)
    pool.open(0)
    return pool


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=200_000, help="length of the text")
    parser.add_argument("--vocab", type=int, default=65, help="characters in the vocabulary")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args(argv)
    model = make_model(args.vocab)
    ids = np.random.default_rng(0).integers(0, args.vocab, args.chars)
    check = ids[:5000]
    a, b = fresh(model), fresh(model)
    np.testing.assert_allclose(by_read(b, check), by_steps(a, check), rtol=1e-4, atol=1e-6)
    for name, value in a.state(0).items():
        np.testing.assert_allclose(b.state(0)[name], value, rtol=1e-4, atol=1e-5)
    times = {"steps": [], "read": []}
    for _ in range(args.rounds):
        for name, fn in (("steps", by_steps), ("read", by_read)):
            pool = fresh(model)
            start = time.perf_counter()
            fn(pool, ids)
            times[name].append(time.perf_counter() - start)
    med = {k: float(np.median(v)) for k, v in times.items()}
    env = environment()
    print(f"BLAS (threadpoolctl): {blas_text(env)}; OPENBLAS env: {env['env']}; vector code "
          f"{env['vector_code']}")
    print(f"model: {DEFAULTS['cell']} H={DEFAULTS['hidden']} layers={DEFAULTS['layers']} "
          f"E={EMBED_DIM} V={args.vocab}; text {args.chars} ids; {args.rounds} rounds; "
          f"1 thread; READ_CHUNK {recurrent.streams.READ_CHUNK}\n")
    print("| side | median s | chars/s | rounds (s) |")
    print("|---|---|---|---|")
    for name in ("steps", "read"):
        print(f"| {name} | {med[name]:.3f} | {args.chars / med[name]:,.0f} | "
              f"{', '.join(f'{t:.3f}' for t in times[name])} |")
    print(f"\nread is {med['steps'] / med['read']:.1f}x the step loop (ratio of medians)")


if __name__ == "__main__":
    main()
