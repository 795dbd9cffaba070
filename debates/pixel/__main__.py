"""Command line for the pixel judge, usable without Django:

python -m debates.pixel fetch-mnist [--from FOLDER]
python -m debates.pixel train-judge --pixels 6 [--seed 0] [--batches N] [--threads N] [--device cuda]
python -m debates.pixel evaluate-judge --pixels 6 [--mask-seeds 0 1 2 3 4]
"""

import argparse
import json
import sys
import time
from pathlib import Path

from . import mnist


def fetch_mnist(args) -> None:
    folder = mnist.fetch(source=args.source)
    for name, digest in mnist.verify(folder).items():
        print(f"{name}  sha256 {digest}  ok")
    print(f"MNIST is in {folder}")


def train_judge(args) -> None:
    import torch
    from tqdm import tqdm

    from .judges import checkpoint_path, export_judge
    from .training import PAPER_BATCHES, TrainingRun, train

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda was asked for but torch sees no CUDA device")
    torch.set_num_threads(args.threads)
    run = TrainingRun(pixels=args.pixels, batches=args.batches or PAPER_BATCHES[args.pixels], seed=args.seed)
    images, labels = mnist.load("train", mnist.fetch())
    checkpoint = checkpoint_path(args.pixels, args.seed)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tqdm(total=run.batches, desc=f"judge {args.pixels}px", unit="batch") as bar:

        def on_step(step, loss):
            if bar.n == 0 and step > 1:
                bar.update(step - 1)
            bar.update(1)
            if step % 100 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")

        model = train(run, images, labels, checkpoint, on_step, device=args.device)
    command = "python -m debates.pixel " + " ".join(sys.argv[1:])
    path = export_judge(model, run, command=command, seconds=time.time() - started, device=args.device)
    print(f"saved {path}")


def evaluate_judge(args) -> None:
    from .judges import evaluate_and_record

    result = evaluate_and_record(args.pixels, args.mask_seeds, write=not args.no_write)
    print(json.dumps(result, indent=2))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m debates.pixel")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("fetch-mnist", help="fetch and verify MNIST")
    p.add_argument("--from", dest="source", type=Path, help="a folder with an existing copy of the IDX files")
    p.set_defaults(func=fetch_mnist)
    p = commands.add_parser("train-judge", help="train the sparse pixel judge (resumes a stopped run)")
    p.add_argument("--pixels", type=int, choices=[4, 6], required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batches", type=int, help="default: the paper's (30,000 for 6 px, 50,000 for 4 px)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.set_defaults(func=train_judge)
    p = commands.add_parser("evaluate-judge", help="test accuracy on random nonzero masks, whole test set")
    p.add_argument("--pixels", type=int, choices=[4, 6], required=True)
    p.add_argument("--mask-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--no-write", action="store_true", help="print only; leave the metadata file as it is")
    p.set_defaults(func=evaluate_judge)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
