"""`phototag train` and `phototag eval`: the command-line side of training and evaluation."""

import dataclasses
import json
import sys
from pathlib import Path

import click

from .cli import fail, main

PRESET_NAMES = ("original", "cpu", "tiny")


def _cache_dir():
    from .weights import cache_dir

    return cache_dir().parent / "faces"  # beside the weight cache: ~/.cache/phototag/faces


def _crops(specs, task, config, weights_dir, limit, augment, seed, label):
    """Datasets → located faces → a dataset of crops, saying what was left out."""
    from . import weights
    from .pipeline import DETECTOR_WEIGHTS
    from .vision.datasets import gather, locate_faces
    from .vision.detect import Detector
    from .vision.training import FaceCrops

    items, reports = gather(specs, task, limit)
    for report in reports:
        dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(report.left_out.items()))
        ranges = f" ({report.ranges} with an age range over two groups)" if report.ranges else ""
        click.echo(f"{label}: {report.source}: {report.items} images{ranges}"
                   f"{'; left out ' + dropped if dropped else ''}", err=True)
    if not items:
        fail(f"no {label} images with labels for task {task}")
    detector = Detector(weights.locate(DETECTOR_WEIGHTS, weights_dir))
    done = 0

    def progress(count):
        nonlocal done
        step = 2000
        if (done + count) // step > done // step:
            click.echo(f"{label}: locating faces {done + count}/{len(items)}", err=True)
        done += count

    faces, not_found = locate_faces(items, detector, _cache_dir(), progress=progress)
    unreadable = sum(f is None for f in faces)
    click.echo(f"{label}: RetinaFace found a face in {len(items) - not_found - unreadable} of "
               f"{len(items)} images; {not_found} used the whole image as the face (tight crops)"
               f"{f', {unreadable} unreadable' if unreadable else ''}", err=True)
    return FaceCrops(items, faces, config, augment=augment, seed=seed)


@main.command()
@click.option("--data", "data", multiple=True, required=True, metavar="[TASK:]PATH",
              help="Training data: an image folder (<class>/<file>), a CSV manifest "
                   "(path,label[,x1,y1,x2,y2], CAER-S layout included) or a UTKFace folder. "
                   "Prefix emotion: or age:. Repeatable.")
@click.option("--val", "val", multiple=True, metavar="[TASK:]PATH",
              help="Validation data, as --data. [default: --holdout of --data]")
@click.option("--holdout", type=click.FloatRange(0, 0.9), default=0.1, show_default=True,
              help="For each task --val has no data for, hold this share of the training images "
                   "out for validation, chosen by a hash of each file's content (identical "
                   "images stay on one side). `phototag eval --held-out` scores the same part.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write (.safetensors); a checkpoint (OUT.ckpt) and a JSON "
                   "log (OUT.json) go beside it.")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default="original", show_default=True,
              help="original: EfficientNet-B0 face, ResNeSt-50 context, 224 px; cpu: ResNet-18 "
                   "both, 64 px; tiny: for tests.")
@click.option("--kind", type=click.Choice(["gated", "fusion", "caer"]), default="gated",
              show_default=True, help="The gated model, its backbones with Adaptive Fusion, or CAER-Net.")
@click.option("--face-backbone", help="timm model name for the face branch (overrides the preset).")
@click.option("--context-backbone", help="timm model name for the context branch and GatingNet.")
@click.option("--face-size", type=click.IntRange(16), help="Aligned face crop side, pixels.")
@click.option("--context-size", type=click.IntRange(16), help="Context crop side, pixels.")
@click.option("--context-scale", type=click.FloatRange(0), help="Context = k × the face box; 0: the whole photo.")
@click.option("--stage", type=click.Choice(["face", "context", "gate", "all"]), default="all",
              show_default=True, help="Which of the three stages to run (gated models).")
@click.option("--task", type=click.Choice(["emotion", "age", "both"]), default="both",
              show_default=True, help="Which labels to learn.")
@click.option("--optimizer", type=click.Choice(["sam", "adam"]), default="sam", show_default=True,
              help="SAM around AdamW, or AdamW alone.")
@click.option("--rho", type=float, default=0.05, show_default=True, help="SAM neighbourhood size.")
@click.option("--adaptive", is_flag=True, help="Adaptive SAM (scale-invariant neighbourhood).")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Peak learning rate (one-cycle).")
@click.option("--epochs", type=click.IntRange(1), default=5, show_default=True, help="Epochs per stage.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--balance", type=click.Choice(["loss", "sampler", "none"]), default="loss",
              show_default=True, help="Class balance: weighted loss, weighted sampling, or none.")
@click.option("--no-augment", is_flag=True, help="No flips, alignment jitter or brightness changes.")
@click.option("--limit-per-class", type=click.IntRange(1), help="At most N images per class and dataset.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True, help="Data loading processes.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False),
              help="Start from these weights (e.g. run --stage gate after face and context); "
                   "their configuration replaces --preset, --kind and the backbone and size options.")
@click.option("--fp16", is_flag=True, help="Store the weights as float16: half the size, for shipping.")
@click.option("--resume", is_flag=True, help="Continue from OUT.ckpt where a stopped run left off.")
@click.option("--weights-dir", type=click.Path(file_okay=False), envvar="PHOTOTAG_WEIGHTS",
              help="Where the RetinaFace weights are (faces of the training images are located "
                   "with it and cached).")
def train(data, val, holdout, out, preset, kind, face_backbone, context_backbone, face_size, context_size,
          context_scale, stage, task, optimizer, rho, adaptive, lr, epochs, batch_size, balance,
          no_augment, limit_per_class, seed, workers, device, init, fp16, resume, weights_dir):
    """Train an emotion/age model and write its weights.

    \b
      phototag train --preset cpu --data emotion:fer2013/train --val emotion:fer2013/val \\
                     --data age:utkface --out my-model.safetensors
    """
    from .pipeline import SetupError, _resolve_device
    from .vision.config import PRESETS
    from .vision.models import build_model
    from .vision.training import TrainOptions, seed_everything, train as run_training
    from .vision.weightsfile import load_weights, save_weights
    from .weights import WeightsError

    seed_everything(seed)  # before the model is built: its initial weights are part of the run

    earlier = {}  # the training the --init weights already had: their record is carried on
    if init:
        model, earlier = load_weights(init)
        config = model.config
    else:
        changes = {k: v for k, v in dict(kind=kind, face_backbone=face_backbone,
                                         context_backbone=context_backbone, face_size=face_size,
                                         context_size=context_size,
                                         context_scale=context_scale).items() if v is not None}
        config = dataclasses.replace(PRESETS[preset], **changes)
        try:
            model = build_model(config)
        except RuntimeError as exc:  # timm: unknown model name
            fail(str(exc))
    try:
        device = _resolve_device(device)
        train_set = _crops(data, task, config, weights_dir, limit_per_class, not no_augment, seed, "train")
        val_set = _crops(val, task, config, weights_dir, limit_per_class, False, seed, "val") if val else None
        validated = {t for t in ("emotion", "age")
                     if val_set and any(_labelled_for(i, {t}) for i in val_set.items)}
        held = _holdout(train_set, holdout, {"emotion", "age"} - validated)
        if held is not None:
            click.echo(f"val: {len(held)} images held out of the training data", err=True)
            val_set = held if val_set is None else _joined(val_set, held)
        if val_set is None:
            fail("no validation data: give --val, or a --holdout above 0")
    except (WeightsError, SetupError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    options = TrainOptions(stage=stage, optimizer=optimizer, rho=rho, adaptive=adaptive, lr=lr,
                           epochs=epochs, batch_size=batch_size, balance=balance,
                           augment=not no_augment, seed=seed, workers=workers,
                           checkpoint=f"{out}.ckpt", resume=resume)
    try:
        history = run_training(model, train_set, val_set, options, device,
                               report=lambda line: click.echo(line, err=True))
    except ValueError as exc:
        fail(str(exc))
    info = {
        "epochs": earlier.get("epochs", 0) + len(history),
        "stage": stage,
        "optimizer": optimizer,
        "command": "phototag " + " ".join(sys.argv[1:]),
        "earlier_commands": earlier.get("earlier_commands", []) + (
            [earlier["command"]] if earlier.get("command") else []),
        "train": list(data),
        "val": list(val),
        "holdout": holdout,
        "history": earlier.get("history", []) + [dataclasses.asdict(h) for h in history],
    }
    save_weights(model, out, info=info, half=fp16)
    Path(f"{out}.json").write_text(json.dumps(info, indent=2))
    click.echo(f"wrote {out} and {out}.json", err=True)


def _holdout(train_set, fraction, tasks):
    """Move ``fraction`` of the training images labelled for ``tasks`` into a validation set
    (by content hash, see ``split_holdout``); None when nothing is held out."""
    from .vision.datasets import split_holdout
    from .vision.training import FaceCrops

    if fraction <= 0 or not tasks:
        return None
    face_of = {id(i): f for i, f in zip(train_set.items, train_set.faces)}
    candidates = [i for i in train_set.items if _labelled_for(i, tasks)]
    _, held = split_holdout(candidates, fraction)
    held_ids = {id(i) for i in held}
    kept = [i for i in train_set.items if id(i) not in held_ids]
    train_set.items, train_set.faces = kept, [face_of[id(i)] for i in kept]
    return FaceCrops(held, [face_of[id(i)] for i in held], train_set.config) if held else None


def _labelled_for(item, tasks):
    return ("emotion" in tasks and item.emotion >= 0) or ("age" in tasks and item.age_mask)


def _joined(first, second):
    from .vision.training import FaceCrops

    return FaceCrops(first.items + second.items, first.faces + second.faces, first.config)


@main.command(name="eval")
@click.argument("weights_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data", multiple=True, required=True, metavar="[TASK:]PATH",
              help="Labelled data, as for `phototag train`.")
@click.option("--task", type=click.Choice(["emotion", "age", "both"]), default="both", show_default=True)
@click.option("--held-out", "held_out", type=click.FloatRange(0, 0.9),
              help="Score only the share of --data that `phototag train --holdout` with this "
                   "value held out for validation.")
@click.option("--branches", is_flag=True, help="Also face-only and context-only accuracy (gated models).")
@click.option("--limit-per-class", type=click.IntRange(1), help="At most N images per class and dataset.")
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--weights-dir", type=click.Path(file_okay=False), envvar="PHOTOTAG_WEIGHTS")
def evaluate_command(weights_file, data, task, held_out, branches, limit_per_class, batch_size, device,
                     as_json, weights_dir):
    """Accuracy, macro-F1, per-class recall and the confusion matrix of a weights file."""
    from torch.utils.data import DataLoader

    from .pipeline import SetupError, _resolve_device
    from .vision.evaluate import evaluate
    from .vision.weightsfile import load_weights
    from .weights import WeightsError

    try:
        device = _resolve_device(device)
        model, _ = load_weights(weights_file, device)
        dataset = _crops(data, task, model.config, weights_dir, limit_per_class, False, 0, "eval")
        if held_out:
            dataset = _holdout(dataset, held_out, {"emotion", "age"})
            if dataset is None:
                fail("nothing of --data falls in the held-out part")
    except (WeightsError, SetupError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    results = evaluate(model, DataLoader(dataset, batch_size=batch_size), device, branches=branches)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for task_name, entry in results.items():
        click.echo(f"{task_name}: {entry['samples']} faces, accuracy {entry['accuracy']:.1%}, "
                   f"macro-F1 {entry['macro_f1']:.3f}"
                   + (f", five original emotions {entry['accuracy_five']:.1%}"
                      if entry.get("accuracy_five") is not None else ""))
        if entry.get("accuracy_within_one") is not None:
            share = entry["adjacent_share_of_errors"]
            click.echo(f"  within one group {entry['accuracy_within_one']:.1%}"
                       + (f"; {share:.0%} of the errors are to a neighbouring group" if share is not None else ""))
        if "branches" in entry:
            click.echo("  " + ", ".join(f"{mode} {acc:.1%}" for mode, acc in entry["branches"].items()))
        if "mean_gates" in entry:
            gates = entry["mean_gates"]
            click.echo(f"  mean weight: face {gates['face']:.2f}, context {gates['context']:.2f}")
        recall = ", ".join(f"{name} {value:.0%}" for name, value in entry["recall"].items()
                           if value is not None)
        click.echo(f"  recall: {recall}")
        classes = entry["confusion"]["classes"]
        click.echo("  confusion (rows: true, columns: predicted): " + " ".join(c[:5] for c in classes))
        for name, row in zip(classes, entry["confusion"]["matrix"]):
            click.echo(f"  {name[:12]:>12} " + " ".join(f"{v:5d}" for v in row))
