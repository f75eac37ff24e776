"""The printed torch model of an encoder-decoder (recurrent/seq2seq): what `recurrent
export SEQ2SEQ_RUN --format torch` prints after the header comments, a class
``Seq2Seq(torch.nn.Module)`` whose state_dict names are the exported file's
(seq2seq_names.py), so the file loads with strict=True, and whose methods compute what
recurrent does:

  encode(source (S, B) int64, source_lengths (B,) int64) -> (memory (S, B, F), states)
      Seq2SeqModel.encode: the encoder, then the bridge (per layer, the encoder's D
      directions' final states side by side); states is a list [h (L, B, F), c (L, B, F)
      for LSTM and ln_lstm, the fed h~ (1, B, F), zeros, for additive attention]. A row
      of source length 0 has zero memory and zero states.
  step(previous (B,) int64, states, memory, source_lengths)
      -> (log_probs (B, V), new states, attention weights (B, S))
      Seq2SeqModel.decoder_step: one decoder step, the attention ("dot", "general", or
      "additive" with input feeding), the head; PAD (0) and BOS are -inf.
  greedy(source, source_lengths, max_len=None) -> each row's token ids, EOS excluded
      decode.greedy: the argmax at every step until EOS or the row's limit, by default
      decode.default_max_len's with the run's longest training target.
  beam(source, source_lengths, width, alpha=1.0, max_len=None, nbest=1)
      -> each row's nbest best hypotheses, as (token ids, EOS excluded; normalised score)
      decode.search: beam search, its B*K hypotheses one decoder batch, finished ones
      kept at no cost, ranked by summed log-probability / length^alpha, the limit
      greedy's.
  greedy and beam start with start(): their inputs checked (ValueError: a source not
  (S, B) with S, B >= 1, lengths not (B,) each in 0..S, a max_len below 1), the source
  encoded, each row's limit.

The recurrent stacks are torch.nn.RNN/LSTM/GRU, or torch_loop.py's printed Recurrent
where no torch.nn module computes them (torch_names.loops: ln_lstm, zoneout). The
vocabularies stay in the file's metadata (the run's config.json, its task_state): the
header comments say how to read them. Legend as seq2seq_names.py's.
"""
from __future__ import annotations

import inspect

from ..layout import STATE_NAMES
from ..seq2seq import decode
from ..seq2seq.model import ADDITIVE, PAD_ID
from . import torch_names

CLASS = "Seq2Seq"  # the printed model's class
# the printed beam's default length normalisation: decode.search's
ALPHA = inspect.signature(decode.search).parameters["alpha"].default


def header_lines(model, info: dict, path: str) -> list[str]:
    """The header lines (run.py comments them) telling how to turn text into source ids
    and target ids into text: the vocabularies in ``path``'s metadata, the ids the
    printed code fixes, the default decoding limit."""
    return [
        "text <-> ids: the vocabularies are in the file's metadata (the run's config.json);",
        "  with import json, safetensors:",
        f"  state = json.loads(safetensors.safe_open({path!r}, 'pt')"
        f".metadata()['config.json'])['task_state']",
        "  source id: the index of a symbol in state['source_vocab']; the text stripped when",
        "  state['strip'], lower-cased when state['lowercase_input'], in the Unicode form",
        "  state['unicode'] when it has one (unicodedata.normalize), then cut into symbols:",
        "  characters for state['source_level'] 'char', whitespace-separated words for 'token';",
        "  a symbol not in state['source_vocab'] (or '<pad>', whose id 0 is padding) is one",
        "  the model never saw: `recurrent predict` refuses such a text",
        "  target id: its symbol is state['target_vocab'][id]; an output's symbols are joined",
        "  with spaces for state['target_level'] 'token', without for 'char'",
        f"ids: PAD {PAD_ID} (source padding after each row's end), BOS {model.bos}, "
        f"EOS {model.eos}; greedy's and beam's default limit",
        f"  per row: max(2 x its source length, {_longest(info)} (the longest training "
        f"target)) + 10 symbols",
    ]


def _longest(info: dict) -> int:
    """The run's longest training target (task_state "longest_target"; 0 for a run saved
    before the state recorded it), which decode.default_max_len's limit does not cut."""
    return int((info.get("task_state") or {}).get("longest_target") or 0)


def torch_source(model, path: str, info: dict) -> list[str]:
    """Python lines defining the Seq2Seq torch model of ``model`` (a Seq2SeqModel) and
    loading ``path`` into it (strict); ``info``: the run's config.json object."""
    torch_names.check_rnn_cell(model.encoder, "PyTorch")  # the decoder's is the same cell
    lines = torch_names.source_start(model.encoder)
    while not lines[-1]:
        lines.pop()
    lines += ["", ""] + _encoder_source(model) + ["", ""] + _decoder_source(model) + ["", ""]
    lines += _attention_source(model) + ["", ""]
    lines += _model_source(model, _longest(info))
    return lines + ["", *torch_names.load_lines(CLASS, path)]


def _states(rnn) -> list[str]:
    """The names of one stack's states: ["h"] or ["h", "c"]."""
    return [name[0] for name in STATE_NAMES[rnn.cell.name]]


def _encoder_source(model) -> list[str]:
    enc = model.encoder
    names = _states(enc)
    own = ", ".join(names)
    finals = f"({own})" if len(names) > 1 else names[0]
    D, H = model.num_directions, enc.hidden_size
    order = "layer-major, forward then reverse; " if D == 2 else ""
    lines = [
        "class Encoder(torch.nn.Module):",
        f'    """source (S, B) int64 ids, lengths (B,) -> (memory (S, B, {D * H}), zero past',
        f"    each row's length; the final states [{own}], each ({enc.num_layers * D}, B, {H}),",
        f'    {order}zero for a row of length 0)."""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        f"        self.embedding = torch.nn.Embedding({model.source_embedding.num_embeddings}, "
        f"{model.source_embedding.embedding_dim})",
        f"        self.rnn = {torch_names.stack_constructor(enc)}",
        "",
        "    def forward(self, source: torch.Tensor,",
        "                lengths: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:",
        "        x = self.embedding(source)  # (S, B, E)",
    ]
    if torch_names.loops(enc):
        lines += [f"        memory, {finals} = self.rnn(x, lengths)",
                  f"        return memory, [{own}]"]
    else:
        lines += [
            "        # packed sequences need every length >= 1: a row of length 0 runs one",
            "        # step here, and its memory and states are zeroed below, as recurrent's",
            "        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), "
            "enforce_sorted=False)",
            f"        out, {finals} = self.rnn(packed)",
            "        memory, _ = pad_packed_sequence(out, total_length=x.shape[0])",
            "        empty = (lengths == 0)[None, :, None]",
            "        return (memory.masked_fill(empty, 0.0),",
            f"                [s.masked_fill(empty, 0.0) for s in [{own}]])",
        ]
    return lines


def _decoder_source(model) -> list[str]:
    dec = model.decoder
    additive = model.feeding is not None
    names = _states(dec)
    given = [f"states[{i}]" for i in range(len(names))]
    given = f"({', '.join(given)})" if len(given) > 1 else given[0]
    finals = f"({', '.join(names)})" if len(names) > 1 else names[0]
    own = ", ".join(names)  # the stack's states
    states = own + (", h~" if additive else "")
    F = dec.hidden_size
    shape = f"{own} ({dec.num_layers}, B, {F})" + (" each" if len(names) > 1 else "")
    lines = [
        "class Decoder(torch.nn.Module):",
        f'    """One step: previous (B,) int64 ids, states [{states}] -> (out (B, {F}),',
    ] + ([f'    the new [{own}]); {shape}; h~ (1, B, {F}), the step before\'s',
          '    attentional vector, fed beside the embedding (input feeding)."""']
         if additive else [f'    the new [{own}]); {shape}."""']) + [
        "",
        "    def __init__(self):",
        "        super().__init__()",
        f"        self.embedding = torch.nn.Embedding({model.target_embedding.num_embeddings}, "
        f"{model.target_embedding.embedding_dim})",
        f"        self.rnn = {torch_names.stack_constructor(dec)}",
        "",
        "    def forward(self, previous: torch.Tensor,",
        "                states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:",
    ]
    if additive:  # input feeding: the previous step's h~ beside the embedding
        lines.append("        x = torch.cat([self.embedding(previous), states[-1][0]], 1)[None]"
                     "  # (1, B, E + F)")
    else:
        lines.append("        x = self.embedding(previous)[None]  # (1, B, E)")
    if torch_names.loops(dec):
        lines.append(f"        out, {finals} = self.rnn(x, torch.ones_like(previous), {given})")
    else:
        lines.append(f"        out, {finals} = self.rnn(x, {given})")
    lines.append(f"        return out[0], [{', '.join(names)}]")
    return lines


def _attention_source(model) -> list[str]:
    """The Attention module: its parameters under the exported names (attention.*), and
    h (B, F), memory, lengths -> (h~ (B, F), weights (B, S)) as attention.py (Luong) or
    feeding.py (additive) compute them."""
    F = model.decoder.hidden_size
    kind = model.spec.get("attention", "general")
    shapes = {"dot": {"weight_c": (F, 2 * F)},
              "general": {"weight_c": (F, 2 * F), "weight_a": (F, F)},
              ADDITIVE: {"weight_q": (F, F), "weight_k": (F, F), "v": (F,),
                         "weight_c": (F, 2 * F)}}[kind]
    score = {"dot": "h . s_j", "general": "(h W_a) . s_j",
             ADDITIVE: "v . tanh(W_q h + W_k s_j)"}[kind]
    lines = [
        "class Attention(torch.nn.Module):",
        f'    """{kind} attention: score {score}; a softmax over each row\'s',
        "    source steps (none for a row of length 0: weights and context zero), context",
        '    c = sum_j a_j s_j, h~ = tanh(W_c [h; c])."""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
    ]
    lines += [f"        self.{name} = torch.nn.Parameter(torch.zeros({', '.join(map(str, shape))}))"
              for name, shape in shapes.items()]
    lines += [
        "",
        "    def forward(self, h: torch.Tensor, memory: torch.Tensor,",
        "                lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:",
        '        """h (B, F), memory (S, B, F), lengths (B,) -> (h~ (B, F), weights (B, S))."""',
    ]
    if kind == ADDITIVE:
        lines += ["        u = torch.tanh(memory @ self.weight_k.T + (h @ self.weight_q.T)[None])",
                  "        scores = (u @ self.v).T  # (B, S)"]
    else:
        query = "h @ self.weight_a" if kind == "general" else "h"
        lines.append(f"        scores = torch.einsum(\"bf,sbf->bs\", {query}, memory)")
    lines += [
        "        valid = torch.arange(memory.shape[0], device=lengths.device)[None, :] "
        "< lengths[:, None]",
        "        a = torch.softmax(scores.masked_fill(~valid, float(\"-inf\")), dim=1)",
        "        a = torch.where(valid, a, 0.0)  # a row of length 0: NaN from the softmax",
        "        context = torch.einsum(\"bs,sbf->bf\", a, memory)",
        "        return torch.tanh(torch.cat([h, context], 1) @ self.weight_c.T), a",
    ]
    return lines


def _model_source(model, longest: int) -> list[str]:
    enc, dec = model.encoder, model.decoder
    L, D, F = enc.num_layers, model.num_directions, dec.hidden_size
    additive = model.feeding is not None
    states = ", ".join(_states(enc)) + (", h~" if additive else "")
    first = f"        first states [{states}]): per layer, the encoder's"
    bridge = ([f"{first} two directions' final", '        states side by side."""']
              if D == 2 else [f'{first} final states."""'])
    return [
        f"class {CLASS}(torch.nn.Module):",
        '    """recurrent\'s encoder-decoder, time-major: encode once, then step the decoder',
        "    (greedy: the argmax at every step, as `recurrent predict RUN` decodes with --beam",
        "    1; beam: beam search, as `recurrent predict RUN --beam K --n-best N --alpha A`",
        '    decodes)."""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        "        self.encoder = Encoder()",
        "        self.decoder = Decoder()",
        "        self.attention = Attention()",
        f"        self.head = torch.nn.Linear({F}, {model.head.out_features})",
        f"        self.pad, self.bos, self.eos = {PAD_ID}, {model.bos}, {model.eos}  "
        f"# target ids (PAD: source padding too)",
        f"        self.longest_target = {longest}  "
        f"# the default decoding limit does not cut a training target",
        "",
        "    @torch.jit.export  # compiled by torch.jit.script(model), as step, greedy, beam",
        "    def encode(self, source: torch.Tensor,",
        "               source_lengths: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:",
        '        """source (S, B) int64 ids padded with PAD (0) after each row\'s end,',
        f"        source_lengths (B,) int64 (0 allowed) -> (memory (S, B, {F}), the decoder's",
    ] + bridge + [
        "        memory, finals = self.encoder(source, source_lengths)",
        f"        states = [s.unflatten(0, ({L}, {D})).transpose(1, 2).flatten(2)"
        f" for s in finals]  # ({L}, B, {F})",
    ] + ([f"        states.append(memory.new_zeros(1, source.shape[1], {F}))"
          f"  # the h~ fed to the first step"] if additive else []) + [
        "        return memory, states",
        "",
        "    @torch.jit.export",
        "    def step(self, previous: torch.Tensor, states: list[torch.Tensor], "
        "memory: torch.Tensor,",
        "             source_lengths: torch.Tensor,",
        "             ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:",
        '        """previous (B,) int64: each row\'s previous token (BOS first); states: those',
        "        of encode, then of the step before -> (log_probs (B, V), PAD and BOS -inf:",
        '        never emitted; the new states; the attention weights (B, S))."""',
        "        out, new = self.decoder(previous, states)",
        "        h, weights = self.attention(out, memory, source_lengths)",
    ] + (["        new.append(h[None])  # fed to the next step"] if additive else []) + [
        "        logits = self.head(h)",
        "        logits[:, self.pad] = float(\"-inf\")",
        "        logits[:, self.bos] = float(\"-inf\")",
        "        return torch.log_softmax(logits, dim=1), new, weights",
        "",
        "    @torch.jit.export",
        "    def greedy(self, source: torch.Tensor, source_lengths: torch.Tensor,",
        "               max_len: int | None = None) -> list[list[int]]:",
        '        """Each row\'s output token ids, EOS excluded: the most likely token at each',
        "        step, until EOS or max_len tokens (default: max(2 x the row's source length,",
        '        self.longest_target) + 10)."""',
        "        B = source.shape[1]",
        "        memory, states, limit = self.start(source, source_lengths, max_len)",
        "        previous = torch.full_like(source_lengths, self.bos)",
        "        finished = torch.zeros_like(source_lengths, dtype=torch.bool)",
        "        tokens = [torch.jit.annotate(list[int], []) for _ in range(B)]",
        "        for t in range(int(limit.max())):",
        "            log_probs, states, _ = self.step(previous, states, memory, source_lengths)",
        "            live = ~finished & (t < limit)  # a row past its limit is stopped",
        "            token = torch.where(live, log_probs.argmax(1), self.eos)",
        "            ids: list[int] = token.tolist()",
        "            for b in range(B):",
        "                if ids[b] != self.eos:",
        "                    tokens[b].append(ids[b])",
        "            finished = finished | (live & (token == self.eos))",
        "            previous = token",
        "            if not bool((~finished & (t + 1 < limit)).any()):",
        "                break",
        "        return tokens",
        "",
    ] + _start_source() + [""] + _beam_source()


def _start_source() -> list[str]:
    """The printed Seq2Seq's start method, greedy's and beam's common beginning: their
    inputs checked (a ValueError rather than an error from deep inside torch), the
    source encoded, each row's limit of decoded symbols (decode.default_max_len's)."""
    return [
        "    def start(self, source: torch.Tensor, source_lengths: torch.Tensor,",
        "              max_len: int | None,",
        "              ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:",
        '        """greedy\'s and beam\'s start: (memory, states) of encode on the source cut',
        "        to its longest row, and each row's limit of decoded symbols: max_len, by",
        "        default max(2 x its source length, self.longest_target) + 10. ValueError",
        "        for a source that is not (S, B) with S, B >= 1, lengths that are not (B,)",
        '        each in 0..S, a max_len below 1."""',
        "        if source.dim() != 2 or source.shape[0] < 1 or source.shape[1] < 1:",
        "            raise ValueError(\"source: expected ids of shape (S, B) with S, B >= 1\")",
        "        if (source_lengths.dim() != 1 or source_lengths.shape[0] != source.shape[1]",
        "                or bool((source_lengths < 0).any())",
        "                or int(source_lengths.max()) > source.shape[0]):",
        "            raise ValueError(\"source_lengths: expected shape (B,), each in 0..S\")",
        "        if max_len is not None and max_len < 1:",
        "            raise ValueError(\"max_len: expected at least 1\")",
        "        source = source[:max(1, int(source_lengths.max()))]",
        "        memory, states = self.encode(source, source_lengths)",
        "        if max_len is None:",
        "            limit = (2 * source_lengths).clamp(min=self.longest_target) + 10",
        "        else:",
        "            limit = torch.full_like(source_lengths, max_len)",
        "        return memory, states, limit",
    ]


def _beam_source() -> list[str]:
    """The printed Seq2Seq's beam method: decode.search's rules (module docstring there),
    its B*K hypotheses one decoder batch, each step's top K a stable sort (ties to the
    lower index, as decode._top_k)."""
    return [
        "    @torch.jit.export",
        "    def beam(self, source: torch.Tensor, source_lengths: torch.Tensor, width: int,",
        f"             alpha: float = {ALPHA!r}, max_len: int | None = None, nbest: int = 1,",
        "             ) -> list[list[tuple[list[int], float]]]:",
        '        """Beam search of width K = width: each row\'s nbest best hypotheses, best',
        "        first, as (token ids, EOS excluded; score / length^alpha, the score the",
        "        summed log-probabilities and the length counting EOS). A hypothesis that",
        "        emitted EOS is finished and stays in the beam at no cost; a row stops after",
        "        max_len tokens (default: max(2 x its source length, self.longest_target) +",
        "        10). Where fewer than nbest hypotheses exist, the last are ([], -inf).",
        "        All rows' hypotheses are one decoder batch of B*K rows, row b's in rows",
        '        b*K .. b*K+K-1."""',
        "        if width < 1 or not 1 <= nbest <= width:",
        "            raise ValueError(\"beam: expected width >= 1 and 1 <= nbest <= width\")",
        "        if not 0.0 <= alpha < float(\"inf\"):",
        "            raise ValueError(\"beam: expected a finite alpha >= 0\")",
        "        B, K, device = source.shape[1], width, source.device",
        "        R = B * K",
        "        memory, states, limit = self.start(source, source_lengths, max_len)",
        "        # (R,) the row each hypothesis is of",
        "        rows = torch.arange(B, device=device).repeat_interleave(K)",
        "        memory = memory[:, rows]",
        "        lengths_r = source_lengths[rows]",
        "        limit_r = limit[rows]",
        "        states = [s[:, rows] for s in states]",
        "        # summed log-probabilities, one live hypothesis per row to start from",
        "        scores = torch.full((B, K), float(\"-inf\"), dtype=torch.float64,",
        "                            device=device)",
        "        scores[:, 0] = 0.0",
        "        scores = scores.reshape(R)",
        "        finished = torch.zeros(R, dtype=torch.bool, device=device)",
        "        # tokens each hypothesis emitted, EOS included",
        "        lengths = torch.zeros_like(finished, dtype=torch.int64)",
        "        previous = torch.full_like(lengths, self.bos)",
        "        base = (torch.arange(B, device=device) * K)[:, None]  # (B, 1) row b's first",
        "        here = torch.arange(R, device=device)",
        "        # each step's parent hypotheses and tokens, traced back once at the end",
        "        parents: list[torch.Tensor] = []",
        "        emitted: list[torch.Tensor] = []",
        "        for t in range(int(limit.max())):",
        "            log_probs, states, _ = self.step(previous, states, memory, lengths_r)",
        "            log_probs = log_probs.double()",
        "            V = log_probs.shape[1]",
        "            # a finished hypothesis continues only as itself: EOS at cost 0",
        "            done = torch.full_like(log_probs[0], float(\"-inf\"))",
        "            done[self.eos] = 0.0",
        "            log_probs = torch.where(finished[:, None], done[None], log_probs)",
        "            total = (scores[:, None] + log_probs).reshape(B, K * V)",
        "            # each row's K best continuations, ties to the lower index (stable sort)",
        "            order = torch.sort(-total, dim=1, stable=True)[1][:, :K]  # (B, K)",
        "            parent = (base + torch.div(order, V, rounding_mode=\"floor\")).reshape(R)",
        "            token = (order % V).reshape(R)",
        "            new_scores = total.gather(1, order).reshape(R)",
        "            # a row past its limit is stopped: its hypotheses stay as they are",
        "            stopped = t >= limit_r",
        "            parent = torch.where(stopped, here, parent)",
        "            token = torch.where(stopped, self.eos, token)",
        "            scores = torch.where(stopped, scores, new_scores)",
        "            was_finished = finished[parent]",
        "            parents.append(parent)",
        "            emitted.append(token)",
        "            lengths = lengths[parent] + (~(was_finished | stopped)).long()",
        "            finished = was_finished | ((token == self.eos) & ~stopped)",
        "            states = [s[:, parent] for s in states]",
        "            previous = token",
        "            if not bool((~finished & (t + 1 < limit_r)).any()):",
        "                break",
        "        # the final ranking: score / length^alpha (EOS counted), nothing without a score",
        "        possible = torch.isfinite(scores)",
        "        if alpha != 0.0:",
        "            norm = scores / lengths.clamp(min=1).double() ** alpha",
        "        else:",
        "            norm = scores",
        "        norm = torch.where(possible, norm, float(\"-inf\")).reshape(B, K)",
        "        ranked = torch.sort(-norm, dim=1, stable=True)[1][:, :nbest]  # (B, nbest)",
        "        best = (base + ranked).reshape(-1)",
        "        history = torch.zeros(len(parents), best.shape[0], dtype=torch.int64,",
        "                              device=device)",
        "        hyp = best",
        "        for s in range(len(parents) - 1, -1, -1):",
        "            history[s] = emitted[s][hyp]",
        "            hyp = parents[s][hyp]",
        "        # tokens each ranked hypothesis holds, EOS excluded; none without a score",
        "        n_tokens = torch.where(possible, lengths - finished.long(), 0)[best]",
        "        ids: list[list[int]] = history.t().tolist()",
        "        counts: list[int] = n_tokens.tolist()",
        "        values: list[float] = norm.gather(1, ranked).reshape(-1).tolist()",
        "        out: list[list[tuple[list[int], float]]] = []",
        "        for b in range(B):",
        "            found: list[tuple[list[int], float]] = []",
        "            for k in range(b * nbest, (b + 1) * nbest):",
        "                found.append((ids[k][:counts[k]], values[k]))",
        "            out.append(found)",
        "        return out",
    ]
