"""`phototag train` and `phototag eval`: the command-line side of training and evaluation."""

import dataclasses
import json
import sys
from pathlib import Path

import click

from ..allocator import keep_freed_memory
from ..commandline import fail

PRESET_NAMES = ("cpu", "original", "scratch-cpu", "tiny")


def _cache_dir():
    from ..weights import cache_dir

    return cache_dir().parent / "crops"  # beside the weight cache: ~/.cache/phototag/crops


def located_crops(specs, task, config, weights_dir, limit, label):
    """Datasets → faces located and cut (stored once) → a CropSet, saying what was left out."""
    from .. import weights
    from ..vision.detect import Detector
    from .crops import CropGeometry, build_crops
    from .datasets import gather

    items, reports = gather(specs, task, limit)
    for report in reports:
        dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(report.left_out.items()))
        ranges = f" ({report.ranges} with an age range over two groups)" if report.ranges else ""
        click.echo(f"{label}: {report.source}: {report.items} images{ranges}"
                   f"{'; left out ' + dropped if dropped else ''}", err=True)
    if not items:
        fail(f"no {label} images with labels for task {task}")
    detector = Detector(weights.locate(weights.DETECTOR_WEIGHTS, weights_dir))
    done = 0

    def progress(count):
        nonlocal done
        step = 2000
        if (done + count) // step > done // step:
            click.echo(f"{label}: locating and cutting faces {done + count}", err=True)
        done += count

    crops, unreadable = build_crops(items, detector, _cache_dir(), CropGeometry.for_config(config),
                                    progress=progress)
    found = int(round(crops.found_share * len(crops)))
    click.echo(f"{label}: RetinaFace found a face in {found} of {len(crops)} images; "
               f"{len(crops) - found} used the whole image as the face"
               f"{f', {unreadable} unreadable' if unreadable else ''}", err=True)
    return crops


def _labelled_for(item, tasks):
    return ("emotion" in tasks and item.emotion >= 0) or ("age" in tasks and item.age_mask)


def split_off_holdout(crops, fraction, tasks):
    """Split ``fraction`` of the images labelled for ``tasks`` off ``crops`` (by content hash,
    see ``split_holdout``): (kept, held out or None)."""
    from .datasets import split_holdout

    if fraction <= 0 or not tasks:
        return crops, None
    candidates = [i for i, item in enumerate(crops.items) if _labelled_for(item, tasks)]
    _, held = split_holdout([crops.items[i] for i in candidates], fraction)
    held_ids = {id(item) for item in held}
    held_positions = [i for i in candidates if id(crops.items[i]) in held_ids]
    kept_positions = [i for i in range(len(crops)) if id(crops.items[i]) not in held_ids]
    return crops.subset(kept_positions), (crops.subset(held_positions) if held_positions else None)


def _device_name(_ctx, _param, value):
    from ..devices import check_device_name

    try:
        return check_device_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _zooms(_ctx, _param, value):
    """Absent → None (the weights file's own); else ``parse_zooms``."""
    from ..vision.config import parse_zooms

    if value is None:
        return None
    try:
        return parse_zooms(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _device(name):
    from ..devices import SetupError, resolve_device

    try:
        return resolve_device(name)
    except SetupError as exc:
        fail(str(exc))


@click.command()
@click.option("--data", "data", multiple=True, required=True, metavar="[TASK:]PATH",
              help="Training data: an image folder (<class>/<file>), a CSV manifest "
                   "(path,label[,x1,y1,x2,y2], CAER-S layout included) or a UTKFace folder. "
                   "Prefix emotion: or age:. Repeatable.")
@click.option("--val", "val", multiple=True, metavar="[TASK:]PATH",
              help="Validation data, as --data. [default: --holdout of --data]")
@click.option("--holdout", type=click.FloatRange(0, 0.9), default=0.1, show_default=True,
              help="Hold this share of the training images out for validation, chosen by a "
                   "hash of each file's content (identical images stay on one side), for every "
                   "task (both with --holdout-all, else those --val gives nothing for). "
                   "`phototag eval --held-out` scores the same part.")
@click.option("--holdout-all", is_flag=True,
              help="Hold out --holdout of every training dataset, even for a task --val covers "
                   "(to score each dataset on its own part later).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write (.safetensors); a checkpoint (OUT.ckpt) and a JSON "
                   "log (OUT.json) go beside it.")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default="cpu", show_default=True,
              help="cpu: FaceMesh's pretrained trunk on the face (96 px) and on the context "
                   "(128 px); original: EfficientNet-B0 face, ResNeSt-50 context, 224 px (for a "
                   "GPU); scratch-cpu: the earlier ResNet-18s at 64 px from random weights; "
                   "tiny: for tests.")
@click.option("--kind", type=click.Choice(["gated", "fusion", "caer"]), default="gated",
              show_default=True, help="The gated model, its backbones with Adaptive Fusion, or CAER-Net.")
@click.option("--face-backbone", help="Backbone of the face branch: facemesh or mobilenetv2 "
                                      "(pretrained starts), or a timm model name, from random "
                                      "weights (overrides the preset).")
@click.option("--context-backbone", help="Backbone of the context branch and GatingNet, as "
                                         "--face-backbone.")
@click.option("--face-backbone-per-task", "per_task", is_flag=True,
              help="A face backbone of its own for emotion and for age (gated models; twice the "
                   "face branch's cost). With --init of a file with one, each task starts from "
                   "a copy of it.")
@click.option("--face-size", type=click.IntRange(16), help="Aligned face crop side, pixels.")
@click.option("--context-size", type=click.IntRange(16), help="Context crop side, pixels.")
@click.option("--context-scale", type=click.FloatRange(0),
              help="Context = k × the face box; 0: the whole photo.")
@click.option("--scratch", is_flag=True,
              help="Start every backbone from random weights, even one with a pretrained start "
                   "(for comparison).")
@click.option("--pretrained", "pretrained_dir", type=click.Path(file_okay=False),
              envvar="PHOTOTAG_PRETRAINED",
              help="Folder holding the pretrained starts named in weights/manifest "
                   "(facemesh_landmark.pth, mobilenet_v2_1.0_224_quant.tflite); else the "
                   "cache, else downloaded once.  "
                   "[env: PHOTOTAG_PRETRAINED]")
@click.option("--stage", type=click.Choice(["face", "context", "gate", "all"]), default="all",
              show_default=True, help="Which of the three stages to run (gated models).")
@click.option("--task", type=click.Choice(["emotion", "age", "both"]), default="both",
              show_default=True, help="Which labels to learn.")
@click.option("--optimizer", type=click.Choice(["sam", "adamw"]), default="sam", show_default=True,
              help="SAM around AdamW, or AdamW alone.")
@click.option("--rho", type=float, default=0.05, show_default=True, help="SAM neighbourhood size.")
@click.option("--adaptive", is_flag=True, help="Adaptive SAM (scale-invariant neighbourhood).")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Peak learning rate (one-cycle).")
@click.option("--epochs", type=click.IntRange(1), default=5, show_default=True, help="Epochs per stage.")
@click.option("--batch-size", type=click.IntRange(2), default=64, show_default=True)
@click.option("--balance", type=click.Choice(["loss", "none"]), default="loss", show_default=True,
              help="Class balance by loss weights (inverse frequency), or none.")
@click.option("--label-smoothing", type=click.FloatRange(0, 0.5), default=0.1, show_default=True,
              help="Emotion labels are smoothed by this much (FER2013's are noisy).")
@click.option("--teacher", type=click.Path(exists=True, dir_okay=False),
              help="Face stage: learn emotion from this gated model's answers too (with its "
                   "test-time views), beside the labels: a label the teacher finds unlikely "
                   "weighs less. The teacher's answers on the training faces are computed once.")
@click.option("--teacher-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="The teacher's share of each emotion target (the rest: the smoothed label).")
@click.option("--augment", type=click.Choice(["full", "light", "none"]), default="full", show_default=True,
              help="full: moves, flips, colours, erasing, and 4 faces in 10 at a lower resolution "
                   "or JPEG-compressed (small faces in photos); light: the same with 1 in 10 "
                   "lowered; none: the crops as they are.")
@click.option("--no-augment", is_flag=True, help="The same as --augment none.")
@click.option("--limit-per-class", type=click.IntRange(1), help="At most N images per class and dataset.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, callback=_device_name,
              help="auto, cpu, cuda or cuda:N.")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False),
              help="Start from these weights (e.g. run --stage gate after face and context); "
                   "their configuration replaces --preset, --kind and the backbone options, and "
                   "the sizes unless --face-size or --context-size are given.")
@click.option("--fp16", is_flag=True, help="Store the weights as float16: half the size, for shipping.")
@click.option("--resume", is_flag=True, help="Continue from OUT.ckpt where a stopped run left off.")
@click.option("--weights-dir", type=click.Path(file_okay=False), envvar="PHOTOTAG_WEIGHTS",
              help="Where the RetinaFace weights are (faces of the training images are located "
                   "with it, and cut once into ~/.cache/phototag/crops).")
def train(data, val, holdout, holdout_all, out, preset, kind, face_backbone, context_backbone,
          per_task, face_size, context_size, context_scale, scratch, pretrained_dir, stage, task, optimizer,
          rho, adaptive, lr, epochs, batch_size, balance, label_smoothing, teacher, teacher_share, augment,
          no_augment, limit_per_class, seed, device, init, fp16, resume, weights_dir):
    """Train an emotion/age model and write its weights.

    \b
      phototag train --data emotion:fer2013/train --val emotion:fer2013/val \\
                     --data age:utkface --out my-model.safetensors
    """
    from ..vision.config import PRESETS
    from ..vision.models import build_model
    from ..vision.weightsfile import load_weights, save_weights
    from ..weights import WeightsError
    from .losses import class_shares
    from ..files import file_sha256
    from .distil import teacher_probabilities
    from .loop import TrainOptions, seed_everything, train as run_training
    from .join import join_face_branches
    from .pretrained import initialise

    keep_freed_memory()
    seed_everything(seed)  # before the model is built: its initial weights are part of the run
    device = _device(device)
    earlier = {}  # the training the --init weights already had: their record is carried on
    taught = None  # the teacher's answers on the training faces (--teacher)
    pretrained = []
    try:
        if init:
            model, earlier = load_weights(init)
            # The backbones are convolutional and pooled, so a run may go on at another input
            # size (train small, then finish large); the other options stay the file's.
            sizes = {k: v for k, v in dict(face_size=face_size, context_size=context_size).items()
                     if v is not None}
            if sizes:
                model.config = dataclasses.replace(model.config, **sizes)
            if per_task and not model.config.face_backbone_per_task:
                model = join_face_branches(model, model)
            config = model.config
        else:
            changes = {k: v for k, v in dict(kind=kind, face_backbone=face_backbone,
                                             context_backbone=context_backbone, face_size=face_size,
                                             context_size=context_size,
                                             context_scale=context_scale).items() if v is not None}
            if per_task:
                changes["face_backbone_per_task"] = True
            config = dataclasses.replace(PRESETS[preset], **changes)
            try:
                model = build_model(config)
            except RuntimeError as exc:  # timm: unknown model name
                fail(str(exc))
            if not scratch and not resume_exists(out, resume):
                pretrained = initialise(model, pretrained_dir,
                                        report=lambda line: click.echo(line, err=True))
        train_set = located_crops(data, task, config, weights_dir, limit_per_class, "train")
        val_set = located_crops(val, task, config, weights_dir, limit_per_class, "val") if val else None
        validated = {t for t in ("emotion", "age")
                     if val_set and any(_labelled_for(i, {t}) for i in val_set.items)}
        held_tasks = {"emotion", "age"} if holdout_all else {"emotion", "age"} - validated
        train_set, held = split_off_holdout(train_set, holdout, held_tasks)
        if held is not None:
            click.echo(f"val: {len(held)} images held out of the training data", err=True)
            val_set = held if val_set is None else val_set.joined(held)
        if val_set is None:
            fail("no validation data: give --val, or a --holdout above 0")
        if teacher:
            if stage != "face":
                fail("--teacher is for --stage face")
            teacher_model, _ = load_weights(teacher)
            if teacher_model.config.emotions != model.config.emotions:
                fail(f"{teacher} answers other emotions than the model trained")
            click.echo(f"teacher: answering for {len(train_set)} training images", err=True)
            taught = teacher_probabilities(teacher_model, train_set, device,
                                           report=lambda line: click.echo(line, err=True))
            del teacher_model
    except (WeightsError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    options = TrainOptions(stage=stage, optimizer=optimizer, rho=rho, adaptive=adaptive, lr=lr,
                           epochs=epochs, batch_size=batch_size, balance=balance,
                           label_smoothing=label_smoothing, teacher_share=teacher_share,
                           augment="none" if no_augment else augment,
                           seed=seed,
                           checkpoint=f"{out}.ckpt", resume=resume)
    try:
        history = run_training(model, train_set, val_set, options, device,
                               report=lambda line: click.echo(line, err=True),
                               teacher=taught)
    except ValueError as exc:
        fail(str(exc))
    # Recorded only for class-weighted training (what the shares undo); a file trained on without
    # weights must not keep the shares of the file it started from.
    shares = class_shares(train_set, model.config.tasks) if balance == "loss" else ()
    model.config = dataclasses.replace(model.config, class_shares=shares)
    info = {
        "epochs": earlier.get("epochs", 0) + len(history),
        "stage": stage,
        "optimizer": optimizer,
        "pretrained": earlier.get("pretrained", []) + pretrained,
        "command": "phototag " + " ".join(sys.argv[1:]),
        "earlier_commands": earlier.get("earlier_commands", []) + (
            [earlier["command"]] if earlier.get("command") else []),
        "train": list(data),
        "val": list(val),
        "holdout": holdout,
        **({"teacher": {"file": Path(teacher).name, "sha256": file_sha256(teacher),
                        "share": teacher_share}} if teacher else {}),
        "history": earlier.get("history", []) + [dataclasses.asdict(h) for h in history],
        **({"joined": earlier["joined"]} if "joined" in earlier else {}),  # join_face_branches.py
    }
    save_weights(model, out, info=info, half=fp16)
    Path(f"{out}.json").write_text(json.dumps(info, indent=2))
    click.echo(f"wrote {out} and {out}.json", err=True)


def resume_exists(out, resume):
    """A resumed run takes its weights from the checkpoint, not from a pretrained start."""
    return resume and Path(f"{out}.ckpt").is_file()


@click.command(name="eval")
@click.argument("weights_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data", multiple=True, required=True, metavar="[TASK:]PATH",
              help="Labelled data, as for `phototag train`.")
@click.option("--task", type=click.Choice(["emotion", "age", "both"]), default="both", show_default=True)
@click.option("--held-out", "held_out", type=click.FloatRange(0, 0.9),
              help="Score only the share of --data that `phototag train --holdout` with this "
                   "value held out for validation.")
@click.option("--branches", is_flag=True, help="Also face-only and context-only accuracy (gated models).")
@click.option("--face-size-test", type=click.IntRange(8),
              help="Lower every face to this many pixels (and back up) before scoring: how "
                   "the model does on small faces in real photos.")
@click.option("--mirror/--no-mirror", default=None,
              help="Answer with the mean over each face and its mirror image, or not "
                   "(default: as the weights file says).")
@click.option("--emotion-zooms", metavar="Z[,Z...]", callback=_zooms,
              help="Emotion's answer is the mean over each face and its centre enlarged by these "
                   "factors (e.g. 1.2: the middle 1/1.2 of the crop), or none for the face alone "
                   "(gated models). [default: as the weights file says]")
@click.option("--class-shares/--no-class-shares", default=True, show_default=True,
              help="Add the log of each class's share of the training data to the answer, as an "
                   "index run does, where the weights file records them (class-weighted training).")
@click.option("--limit-per-class", type=click.IntRange(1), help="At most N images per class and dataset.")
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--device", default="auto", show_default=True, callback=_device_name,
              help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--weights-dir", type=click.Path(file_okay=False), envvar="PHOTOTAG_WEIGHTS")
def evaluate_command(weights_file, data, task, held_out, branches, face_size_test, mirror, emotion_zooms,
                     class_shares, limit_per_class, batch_size, device, as_json, weights_dir):
    """Accuracy, macro-F1, per-class recall and the confusion matrix of a weights file."""
    from ..vision.weightsfile import load_weights
    from ..weights import WeightsError
    from .evaluate import evaluate

    keep_freed_memory()
    device = _device(device)
    try:
        model, _ = load_weights(weights_file, device)
        dataset = located_crops(data, task, model.config, weights_dir, limit_per_class, "eval")
        if held_out:
            _, dataset = split_off_holdout(dataset, held_out, {"emotion", "age"})
            if dataset is None:
                fail("nothing of --data falls in the held-out part")
    except (WeightsError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    if emotion_zooms and model.config.kind != "gated":
        fail(f"--emotion-zooms is for gated models; {weights_file} holds a {model.config.kind!r} model")
    results = evaluate(model, dataset, device, branches=branches, batch_size=batch_size,
                       face_pixels=face_size_test, flip=mirror, shares=class_shares,
                       emotion_zooms=emotion_zooms)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for task_name, entry in results.items():
        click.echo(f"{task_name}: {entry['samples']} faces, accuracy {entry['accuracy']:.1%}, "
                   f"macro-F1 {entry['macro_f1']:.3f}, calibration error "
                   f"{entry['calibration_error']:.3f}"
                   + (f", five original emotions {entry['accuracy_five']:.1%}"
                      if entry.get("accuracy_five") is not None else ""))
        if entry.get("accuracy_within_one") is not None:
            share = entry["adjacent_share_of_errors"]
            neighbours = "" if share is None else f"; {share:.0%} of the errors are to a neighbouring group"
            click.echo(f"  within one group {entry['accuracy_within_one']:.1%}{neighbours}")
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
