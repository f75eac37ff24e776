"""Peak memory of one call, recurrent vs torch: each side in a fresh process, the growth of
the process's peak resident set (VmHWM in /proc/self/status) across one call.

    python benchmarks/peak_memory.py [--cell lstm,gru,rnn_tanh] [--config T,B,I,H]
                                     [--mode train|infer]

train = forward + backward (loss = sum of outputs, dx computed), infer = forward only
(torch under no_grad; ours through the cell's cache-free infer() when it has one), with
the problems of `recurrent bench`. Linux only (reads /proc).
"""
import argparse
import subprocess
import sys

CHILD = """
import sys
from recurrent_plugins.bench import Problem
side, mode, cell = sys.argv[1:4]
T, B, I, H = map(int, sys.argv[4:8])
problem = Problem(cell, T, B, I, H)
if side == "torch":
    import torch
    torch.set_num_threads(1)
    fn = problem.torch_side(mode)[0]
else:
    fn = problem.ours(mode, 1)

def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024

before = peak_mb()
fn()
print(f"{peak_mb() - before:.0f}")
"""


def peak_growth(side, mode, cell, size):
    done = subprocess.run([sys.executable, "-c", CHILD, side, mode, cell, *map(str, size)],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="lstm,gru,rnn_tanh")
    parser.add_argument("--config", default="50,128,512,512")
    parser.add_argument("--mode", choices=("train", "infer"), default="train")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.config.split(","))
    print(f"peak RSS growth of one {args.mode} call at (T, B, I, H) = {size}, 1 thread, MB")
    for cell in args.cell.split(","):
        ours = peak_growth("ours", args.mode, cell, size)
        theirs = peak_growth("torch", args.mode, cell, size)
        print(f"{cell:10} ours {ours:6.0f}   torch {theirs:6.0f}")


if __name__ == "__main__":
    main()
