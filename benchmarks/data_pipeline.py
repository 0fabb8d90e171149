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

Each measurement is warmed up once, then repeated; the repeats are interleaved, so that
a slow spell of a shared machine hits every measurement alike, and the table reports
each one's fastest run (the one least disturbed). The data are the synthetic CIFAR-10
at the quick profile's size (8,000 training images).

Usage (``make bench``)::

    python benchmarks/data_pipeline.py                   # the best device
    python benchmarks/data_pipeline.py --device cpu --images 2000 --repeats 2

The table is printed, and written with the raw timings to
``build/benchmarks/data_pipeline.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import config, data, train

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
OUT_DIR = Path(__file__).resolve().parent.parent / "build" / "benchmarks"
# The targets this pipeline is built to meet, on a CPU.
TARGETS = {"throughput_ratio": 5.0, "fast_epoch_overhead": 0.10, "fit_overhead": 0.05}


def lenet() -> nn.Module:
    """Assignment 2's CIFAR-10 LeNet (390,410 parameters)."""
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), nn.Flatten(),
                         nn.Linear(128 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: GPU kernels run after the Python call returns."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def seconds(run: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of ``run()``, with the device's queue drained at both ends."""
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def read_all(loader: Batches, device: torch.device) -> None:
    """One pass over a loader, with each batch delivered on ``device``."""
    for images, labels in loader:
        images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def hand_loop(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Batches,
              device: torch.device) -> None:
    """The minimal training epoch: forward, loss, backward, step; nothing else."""
    model.train()
    for images, labels in batches:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def fresh_model(device: torch.device) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The same initial LeNet and a new Adam for every timed epoch."""
    torch.manual_seed(0)
    model = lenet().to(device)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def measurements(loaders: dict[str, data.Loaders], premade: list, device: torch.device
                 ) -> dict[str, Callable[[], Callable[[], object]]]:
    """Each measurement as a setup function that prepares what is not timed (a fresh
    model) and returns the call to time. ``compute`` is also the hand-written loop that
    ``fit`` is compared with, timed just before it."""
    def reading(loader: Batches) -> Callable[[], Callable[[], object]]:
        return lambda: (lambda: read_all(loader, device))

    def training(batches: Batches) -> Callable[[], Callable[[], object]]:
        def setup() -> Callable[[], object]:
            model, optimizer = fresh_model(device)
            return lambda: hand_loop(model, optimizer, batches, device)
        return setup

    def fitting() -> Callable[[], object]:
        model, optimizer = fresh_model(device)
        return lambda: train.fit(model, premade, epochs=1, optimizer=optimizer, device=device,
                                 progress=False)

    # In this order, so that the pairs compared run next to each other.
    return {"loader_classic": reading(loaders["classic"].train),
            "loader_fast": reading(loaders["fast"].train),
            "epoch_classic": training(loaders["classic"].train),
            "epoch_fast": training(loaders["fast"].train),
            "compute": training(premade),
            "fit": fitting}


def run_benchmark(device: torch.device, n_images: int, repeats: int, workers: int
                  ) -> dict[str, list[float]]:
    """Time every measurement ``repeats`` times after one warm-up; seconds per run."""
    profile = replace(config.PROFILES["quick"], train_size=n_images, val_size=1_000)
    cifar = data.synthetic_cifar10(n_train=n_images + 1_000, n_test=1_000)
    loaders = {path: data.make_loaders(cifar, profile, seed=0, path=path, augment="all",
                                       device=device,
                                       num_workers=workers if path == "classic" else 0)
               for path in data.PATHS}
    # Pre-made batches for the pure compute: the fast path's, augmented, on the device.
    premade = [(x.clone(), y.clone()) for x, y in loaders["fast"].train]
    timings: dict[str, list[float]] = {}
    plan = measurements(loaders, premade, device)
    for name, setup in plan.items():  # the warm-up: caches, allocator, kernel choice
        seconds(setup(), device)
    for repeat in range(repeats):
        for name, setup in plan.items():
            timings.setdefault(name, []).append(seconds(setup(), device))
            print(f"  run {repeat + 1}/{repeats} {name:<14} {timings[name][-1]:8.3f} s",
                  flush=True)
    return timings


def summarise(timings: dict[str, list[float]], n_images: int) -> dict[str, float]:
    """The headline numbers, each from the fastest run of its measurement."""
    best = {name: min(values) for name, values in timings.items()}
    compute = best["compute"]
    return {
        "throughput_classic": n_images / best["loader_classic"],
        "throughput_fast": n_images / best["loader_fast"],
        "throughput_ratio": best["loader_classic"] / best["loader_fast"],
        "epoch_classic": best["epoch_classic"],
        "epoch_fast": best["epoch_fast"],
        "epoch_ratio": best["epoch_classic"] / best["epoch_fast"],
        "compute": compute,
        "classic_epoch_overhead": best["epoch_classic"] / compute - 1,
        "fast_epoch_overhead": best["epoch_fast"] / compute - 1,
        "fit": best["fit"],
        "fit_overhead": best["fit"] / compute - 1,
        # How far apart the runs of one measurement were: the machine's noise.
        "compute_spread": max(timings["compute"]) / compute - 1,
    }


def table(s: dict[str, float]) -> str:
    """The results as a Markdown table."""
    rows = [
        ("loader throughput, augment=all (images/s)", f"{s['throughput_classic']:,.0f}",
         f"{s['throughput_fast']:,.0f}", f"{s['throughput_ratio']:.1f}x faster"),
        ("LeNet epoch through the loader (s)", f"{s['epoch_classic']:.2f}",
         f"{s['epoch_fast']:.2f}", f"{s['epoch_ratio']:.2f}x faster"),
        ("pure compute on pre-made batches (s)", f"{s['compute']:.2f}", f"{s['compute']:.2f}",
         ""),
        ("epoch over pure compute", f"{s['classic_epoch_overhead']:+.1%}",
         f"{s['fast_epoch_overhead']:+.1%}", ""),
        ("train.fit vs hand loop, pre-made batches (s)", f"{s['fit']:.2f} (fit)",
         f"{s['compute']:.2f} (loop)", f"{s['fit_overhead']:+.1%} overhead"),
    ]
    lines = ["| metric | classic | fast | ratio |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    lines.append(f"\nThe slowest run of the pure compute took {s['compute_spread']:+.0%} longer "
                 "than the fastest: differences smaller than that are noise.")
    return "\n".join(lines)


def verdicts(s: dict[str, float]) -> list[str]:
    """One line per target: met or missed."""
    checks = [
        (s["throughput_ratio"] >= TARGETS["throughput_ratio"],
         f"fast loader >= {TARGETS['throughput_ratio']:g}x classic: {s['throughput_ratio']:.1f}x"),
        (s["fast_epoch_overhead"] <= TARGETS["fast_epoch_overhead"],
         f"fast epoch within {TARGETS['fast_epoch_overhead']:.0%} of pure compute: "
         f"{s['fast_epoch_overhead']:+.1%}"),
        (s["fit_overhead"] < TARGETS["fit_overhead"],
         f"fit() overhead < {TARGETS['fit_overhead']:.0%}: {s['fit_overhead']:+.1%}"),
    ]
    return [f"{'MET   ' if ok else 'MISSED'} {text}" for ok, text in checks]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best)")
    parser.add_argument("--images", type=int, default=8_000, help="training images per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--workers", type=int, default=0, help="classic DataLoader workers")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch CPU threads (default: the cores this process may use)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where to write the results")
    args = parser.parse_args(argv)

    device = torch.device(args.device) if args.device else config.pick_device()
    torch.set_num_threads(args.threads)
    setting = (f"device={device.type} threads={torch.get_num_threads()} images={args.images} "
               f"batch=64 repeats={args.repeats} workers={args.workers} "
               f"torch={torch.__version__} python={platform.python_version()}")
    if device.type == "cuda":
        setting += f" gpu={torch.cuda.get_device_name(device)}"
    print(f"data pipeline benchmark: {setting}", flush=True)

    timings = run_benchmark(device, args.images, args.repeats, args.workers)
    summary = summarise(timings, args.images)
    report = "\n".join([table(summary), "", *verdicts(summary)])
    print(f"\n{report}")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "data_pipeline.md").write_text(f"{setting}\n\n{report}\n")
    medians = {name: statistics.median(values) for name, values in timings.items()}
    result = {"setting": setting, "summary": summary, "timings": timings, "medians": medians}
    (args.out / "data_pipeline.json").write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {args.out}")
    return result


if __name__ == "__main__":
    main()
