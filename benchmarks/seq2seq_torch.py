"""Time per training step of the seq2seq task's model: recurrent vs the same model in
PyTorch, same sizes, same batches, 1 and 2 threads.

Both models: source embedding -> bidirectional LSTM encoder (torch: packed sequences) ->
decoder LSTM of 2H units started from the two directions' final states side by side ->
Luong "general" attention over the valid source steps -> tanh(W_c [h; c]) -> linear head;
loss: cross-entropy over the valid target steps; then gradient clipping (norm 5) and an
Adam step. The batches are the task's own training batches of the bundled CMUdict pairs.

    python benchmarks/seq2seq_torch.py --threads 1 2 [--hidden 128 --batch-size 128]

--attention additive times recurrent's additive attention with input feeding (a Python
loop over target steps) instead, which has no torch twin here.

Prints one JSON line per engine and thread count: the median step time (ms) over
--steps steps after --warmup steps (the median resists a busy machine).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from recurrent.extras import torch_hint

try:
    import torch
except ImportError:  # torch is a benchmark extra, never a runtime dependency
    sys.exit(f"seq2seq_torch.py needs torch: {torch_hint()}")

from recurrent.config import TrainingConfig
from recurrent.step import train_step
from recurrent.threads import single_threaded_blas
from recurrent_plugins.seq2seq.task import TASK


class TorchSeq2Seq(torch.nn.Module):
    def __init__(self, vs, vt, embed, hidden):
        super().__init__()
        F = 2 * hidden
        self.src_embed = torch.nn.Embedding(vs, embed)
        self.encoder = torch.nn.LSTM(embed, hidden, bidirectional=True)
        self.tgt_embed = torch.nn.Embedding(vt, embed)
        self.decoder = torch.nn.LSTM(embed, F)
        self.w_a = torch.nn.Linear(F, F, bias=False)
        self.w_c = torch.nn.Linear(2 * F, F, bias=False)
        self.head = torch.nn.Linear(F, vt)

    def forward(self, src, src_len, tgt_in):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            self.src_embed(src), src_len.clamp(min=1), enforce_sorted=False)
        memory, (h, c) = self.encoder(packed)
        memory, _ = torch.nn.utils.rnn.pad_packed_sequence(memory, total_length=src.shape[0])
        B = src.shape[1]
        init = tuple(s.view(1, 2, B, -1).permute(0, 2, 1, 3).reshape(1, B, -1) for s in (h, c))
        dec, _ = self.decoder(self.tgt_embed(tgt_in), init)  # (T, B, F)
        q = self.w_a(dec).transpose(0, 1)  # (B, T, F)
        mb = memory.transpose(0, 1)  # (B, S, F)
        scores = q @ mb.transpose(1, 2)
        valid = torch.arange(src.shape[0])[None, None, :] < src_len[:, None, None]
        a = torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=-1)
        ctx = a @ mb
        out = torch.tanh(self.w_c(torch.cat([dec.transpose(0, 1), ctx], dim=-1)))
        return self.head(out).transpose(0, 1)  # (T, B, V)


def batches(config, n):
    state = TASK.prepare(config)
    out = []
    for batch in TASK.batches(state, "train", config, np.random.default_rng(0)):
        out.append(batch)
        if len(out) == n:
            break
    return state, out


def time_recurrent(config, state, data, threads, warmup):
    config = TrainingConfig({**config, "threads": threads})
    model = config.build_model(TASK.model_spec(state, config))
    optimizer = config.build_optimizer(model)
    loss = config.loss_function(TASK)
    times = []
    with single_threaded_blas():
        for i, b in enumerate(data):
            t0 = time.perf_counter()
            train_step(model, loss, optimizer, b["x"], b["y"], b["lengths"], None, 1e-3)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return times, model.num_params


def time_torch(config, state, data, threads, warmup):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = TorchSeq2Seq(len(state["source_vocab"]), len(state["target_vocab"]),
                         config["embed_dim"], config["hidden"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for i, b in enumerate(data):
        x = torch.from_numpy(b["x"])
        src, tgt_in = x[:, :, 0], x[:, :, 1]
        src_len = (src != 0).sum(0)
        y = torch.from_numpy(b["y"])
        mask = torch.arange(y.shape[0])[:, None] < torch.from_numpy(b["lengths"])[None, :]
        t0 = time.perf_counter()
        optimizer.zero_grad()
        logits = model(src, src_len, tgt_in)
        loss = torch.nn.functional.cross_entropy(logits[mask], y[mask])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times, sum(p.numel() for p in model.parameters())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--attention", choices=["general", "additive"], default="general",
                   help="additive: recurrent's input-feeding decoder alone (no torch twin)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args(argv)
    overrides = {k: v for k, v in (("hidden", args.hidden), ("batch_size", args.batch_size))
                 if v is not None}
    config = TrainingConfig.resolve(TASK, overrides)
    config.setdefault("embed_dim", 64)
    config["attention"] = args.attention
    state, data = batches(config, args.steps + args.warmup)
    for threads in args.threads:
        engines = [("recurrent", time_recurrent), ("torch", time_torch)]
        for engine, fn in engines[:1] if args.attention == "additive" else engines:
            times, n = fn(config, state, data, threads, args.warmup)
            print(json.dumps({"engine": engine, "attention": args.attention,
                              "threads": threads, "params": n,
                              "hidden": config["hidden"], "batch_size": config["batch_size"],
                              "median_step_ms": round(1e3 * statistics.median(times), 2),
                              "steps": len(times)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
