"""The data pipeline measured: the classic ``DataLoader`` path against the fast
``TensorLoader`` path, and ``train.fit`` against a hand-written loop.

Everything is timed in one run on one device, so that the ratios compare like with like:

1. Loader throughput: images per second of one training pass with the same
   augmentation (``all``: flip, rotation, crop) through each path, batches delivered on
   the device.
2. One LeNet training epoch (conv 32/64/128 5x5 pad 2, max-pool 2 after each, fc 64,
   fc 10, Adam) through each path, against the pure compute: the same epoch over
   batches made beforehand and kept in a list on the device.
3. ``train.fit`` (one epoch, no validation, progress bar off) against a minimal loop,
   both over those pre-made batches.

The runs that are compared take turns, a few steps each (``--chunk``), and each one's
time is the sum of its turns: a busy spell of a shared machine then slows all of them
alike, and their ratios hold even when the absolute times wander. Every comparison is
warmed up, then repeated (``--repeats``); the table gives the median over repeats, the
ratios the median of each repeat's own ratio. The data are the synthetic CIFAR-10 at the
quick profile's size (8,000 training images).

Usage (``make bench``)::

    python benchmarks/data_pipeline.py                   # the best device
    python benchmarks/data_pipeline.py --device cpu --images 2000 --repeats 2

The table is printed, and written with the raw timings to
``build/benchmarks/data_pipeline.{md,json}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import config, data, train

Batch = tuple[torch.Tensor, torch.Tensor]
Step = Callable[[Batch], None]
OUT_DIR = Path(__file__).resolve().parent.parent / "build" / "benchmarks"
# What the fast path is built to achieve on a CPU.
TARGETS = {"throughput_ratio": 5.0, "fast_epoch_overhead": 0.10, "fit_overhead": 0.05}


def lenet() -> nn.Module:
    """Assignment 2's CIFAR-10 LeNet (390,410 parameters)."""

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(3, 32),
        *block(32, 64),
        *block(64, 128),
        nn.Flatten(),
        nn.Linear(128 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: GPU kernels run after the Python call returns."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def delivery_step(device: torch.device) -> Step:
    """A step that only puts the batch on the device: what a loader costs by itself."""

    def step(batch: Batch) -> None:
        for tensor in batch:
            tensor.to(device, non_blocking=True)

    return step


def training_step(device: torch.device) -> Step:
    """A step of the minimal loop, on a fresh LeNet with the same initial weights:
    forward, loss, backward, Adam; nothing else."""
    torch.manual_seed(0)
    model = lenet().to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch: Batch) -> None:
        images, labels = (tensor.to(device, non_blocking=True) for tensor in batch)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


class Turns:
    """One pass of ``step`` over ``batches``, run a turn of a few steps at a time, with
    the seconds of all its turns added up."""

    def __init__(self, batches: Iterable[Batch], step: Step, device: torch.device) -> None:
        self.batches, self.step, self.device = iter(batches), step, device
        self.seconds, self.done = 0.0, False

    def turn(self, steps: int) -> None:
        synchronize(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            batch = next(self.batches, None)  # the loader's work is timed too
            if batch is None:
                self.done = True
                break
            self.step(batch)
        synchronize(self.device)
        self.seconds += time.perf_counter() - start


def take_turns(runs: dict[str, Turns], chunk: int) -> dict[str, float]:
    """Advance the runs in turn until all are done; return each one's seconds."""
    order = list(runs.values())
    while not all(run.done for run in order):
        for run in order:
            if not run.done:
                run.turn(chunk)
        order = order[1:] + order[:1]  # a different run goes first in each round
    return {name: run.seconds for name, run in runs.items()}


class FitFeed:
    """Pre-made batches for ``train.fit`` that, every ``chunk`` batches, first run the
    hand-written loop over the next ``chunk`` of them on its own model, and time that.

    ``fit``'s own time is then its wall-clock time minus ``loop_seconds``, and the two
    have shared the machine turn by turn.
    """

    def __init__(self, batches: Sequence[Batch], chunk: int, device: torch.device) -> None:
        self.batches, self.chunk, self.device = batches, chunk, device
        self.loop = Turns(batches, training_step(device), device)

    @property
    def loop_seconds(self) -> float:
        return self.loop.seconds

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Batch]:
        for index, batch in enumerate(self.batches):
            if index % self.chunk == 0:
                self.loop.turn(self.chunk)
            yield batch


def fit_against_loop(
    batches: Sequence[Batch], chunk: int, device: torch.device
) -> dict[str, float]:
    """Seconds of one ``fit`` epoch and of the hand-written loop, interleaved."""
    feed = FitFeed(batches, chunk, device)
    torch.manual_seed(0)
    model = lenet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    synchronize(device)
    start = time.perf_counter()
    train.fit(model, feed, epochs=1, optimizer=optimizer, device=device, progress=False)
    synchronize(device)
    total = time.perf_counter() - start
    return {"fit": total - feed.loop_seconds, "loop": feed.loop_seconds}


def one_repeat(
    loaders: dict[str, data.Loaders], premade: list[Batch], chunk: int, device: torch.device
) -> dict[str, float]:
    """Every comparison once: seconds per measurement."""
    reading = take_turns(
        {
            f"loader_{path}": Turns(lo.train, delivery_step(device), device)
            for path, lo in loaders.items()
        },
        chunk,
    )
    training = take_turns(
        {
            **{
                f"epoch_{path}": Turns(lo.train, training_step(device), device)
                for path, lo in loaders.items()
            },
            "compute": Turns(premade, training_step(device), device),
        },
        chunk,
    )
    fitting = fit_against_loop(premade, chunk, device)
    return {**reading, **training, "fit": fitting["fit"], "fit_loop": fitting["loop"]}


def warm_up(
    loaders: dict[str, data.Loaders], premade: list[Batch], chunk: int, device: torch.device
) -> None:
    """A few steps of everything, untimed: caches, the memory allocator, and the
    choice of convolution kernels settle before the timing starts."""

    def few(batches: Iterable[Batch]) -> Iterator[Batch]:
        return itertools.islice(batches, 2 * chunk)

    take_turns(
        {
            **{
                path: Turns(few(lo.train), training_step(device), device)
                for path, lo in loaders.items()
            },
            "compute": Turns(few(premade), training_step(device), device),
        },
        chunk,
    )
    fit_against_loop(premade[: 2 * chunk], chunk, device)


def run_benchmark(
    device: torch.device, n_images: int, repeats: int, workers: int, chunk: int
) -> list[dict[str, float]]:
    """Warm up, then time every comparison ``repeats`` times."""
    profile = replace(config.PROFILES["quick"], train_size=n_images, val_size=1_000)
    cifar = data.synthetic_cifar10(n_train=n_images + 1_000, n_test=1_000)
    loaders = {
        path: data.make_loaders(
            cifar,
            profile,
            seed=0,
            path=path,
            augment="all",
            device=device,
            num_workers=workers if path == "classic" else 0,
        )
        for path in data.PATHS
    }
    # Pre-made batches for the pure compute: the fast path's, augmented, on the device.
    premade = [(x.clone(), y.clone()) for x, y in loaders["fast"].train]
    warm_up(loaders, premade, chunk, device)
    results = []
    for repeat in range(repeats):
        results.append(one_repeat(loaders, premade, chunk, device))
        print(
            f"  repeat {repeat + 1}/{repeats}: "
            + ", ".join(f"{name} {value:.2f} s" for name, value in results[-1].items()),
            flush=True,
        )
    return results


def summarise(results: list[dict[str, float]], n_images: int) -> dict[str, float]:
    """Medians over the repeats: of each time, and of each repeat's own ratios."""

    def median(value: Callable[[dict[str, float]], float]) -> float:
        return statistics.median(value(r) for r in results)

    return {
        "throughput_classic": median(lambda r: n_images / r["loader_classic"]),
        "throughput_fast": median(lambda r: n_images / r["loader_fast"]),
        "throughput_ratio": median(lambda r: r["loader_classic"] / r["loader_fast"]),
        "epoch_classic": median(lambda r: r["epoch_classic"]),
        "epoch_fast": median(lambda r: r["epoch_fast"]),
        "epoch_ratio": median(lambda r: r["epoch_classic"] / r["epoch_fast"]),
        "compute": median(lambda r: r["compute"]),
        "classic_epoch_overhead": median(lambda r: r["epoch_classic"] / r["compute"] - 1),
        "fast_epoch_overhead": median(lambda r: r["epoch_fast"] / r["compute"] - 1),
        "fit": median(lambda r: r["fit"]),
        "fit_loop": median(lambda r: r["fit_loop"]),
        "fit_overhead": median(lambda r: r["fit"] / r["fit_loop"] - 1),
        # How far the same measurement wandered between repeats: the machine's noise.
        "compute_spread": max(r["compute"] for r in results) / min(r["compute"] for r in results)
        - 1,
    }


def table(s: dict[str, float]) -> str:
    """The results as a Markdown table."""
    rows = [
        (
            "loader throughput, augment=all (images/s)",
            f"{s['throughput_classic']:,.0f}",
            f"{s['throughput_fast']:,.0f}",
            f"fast {s['throughput_ratio']:.1f}x",
        ),
        (
            "LeNet epoch through the loader (s)",
            f"{s['epoch_classic']:.2f}",
            f"{s['epoch_fast']:.2f}",
            f"fast {s['epoch_ratio']:.2f}x",
        ),
        ("pure compute, pre-made batches (s)", f"{s['compute']:.2f}", f"{s['compute']:.2f}", ""),
        (
            "epoch over pure compute",
            f"{s['classic_epoch_overhead']:+.1%}",
            f"{s['fast_epoch_overhead']:+.1%}",
            "",
        ),
    ]
    lines = [
        "| metric | classic | fast | ratio |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
        "| pre-made batches, one epoch | hand-written loop | `train.fit` | overhead |",
        "| --- | ---: | ---: | ---: |",
        f"| seconds | {s['fit_loop']:.2f} | {s['fit']:.2f} | {s['fit_overhead']:+.1%} |",
        "",
        f"The pure compute varied by {s['compute_spread']:.0%} between repeats.",
    ]
    return "\n".join(lines)


def verdicts(s: dict[str, float]) -> list[str]:
    """One line per target: met or missed."""
    checks = [
        (
            s["throughput_ratio"] >= TARGETS["throughput_ratio"],
            f"fast loader >= {TARGETS['throughput_ratio']:g}x classic: "
            f"{s['throughput_ratio']:.1f}x",
        ),
        (
            s["fast_epoch_overhead"] <= TARGETS["fast_epoch_overhead"],
            f"fast epoch within {TARGETS['fast_epoch_overhead']:.0%} of pure compute: "
            f"{s['fast_epoch_overhead']:+.1%}",
        ),
        (
            s["fit_overhead"] < TARGETS["fit_overhead"],
            f"fit() overhead < {TARGETS['fit_overhead']:.0%}: {s['fit_overhead']:+.1%}",
        ),
    ]
    return [f"{'MET   ' if ok else 'MISSED'} {text}" for ok, text in checks]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best)")
    parser.add_argument("--images", type=int, default=8_000, help="training images per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per comparison")
    parser.add_argument("--chunk", type=int, default=10, help="steps per turn")
    parser.add_argument("--workers", type=int, default=0, help="classic DataLoader workers")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="torch CPU threads (default: the cores this process may use)",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where to write the results")
    args = parser.parse_args(argv)

    device = torch.device(args.device) if args.device else config.pick_device()
    torch.set_num_threads(args.threads)
    setting = (
        f"device={device.type} threads={torch.get_num_threads()} images={args.images} "
        f"batch=64 repeats={args.repeats} chunk={args.chunk} workers={args.workers} "
        f"torch={torch.__version__} python={platform.python_version()}"
    )
    if device.type == "cuda":
        setting += f" gpu={torch.cuda.get_device_name(device)}"
    print(f"data pipeline benchmark: {setting}", flush=True)

    results = run_benchmark(device, args.images, args.repeats, args.workers, args.chunk)
    summary = summarise(results, args.images)
    report = "\n".join([table(summary), "", *verdicts(summary)])
    print(f"\n{report}")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "data_pipeline.md").write_text(f"{setting}\n\n{report}\n")
    record = {"setting": setting, "summary": summary, "repeats": results}
    (args.out / "data_pipeline.json").write_text(json.dumps(record, indent=2))
    print(f"\nwritten to {args.out}")
    return record


if __name__ == "__main__":
    main()
