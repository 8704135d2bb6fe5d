"""Training the attribute models: the three stages of the original design, SAM or AdamW.

Stage ``face`` trains the face branch alone, ``context`` the context branch alone, ``gate``
trains only GatingNet's head on the final gated logits — the context backbone and attention it
shares with the context branch are frozen, and so is everything else. CAER-Net and the fusion
variant train end to end (stage ``all``). Batches come from stored crops (``crops.py``), so an
epoch costs only the network.
"""

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_path
from .augment import AUGMENTATIONS, plain_batch, training_batch
from .losses import class_weights, compute_loss
from .sam import SAM, freeze_running_stats, restore_running_stats

STAGES = ("face", "context", "gate")


@dataclass
class TrainOptions:
    stage: str = "all"
    optimizer: str = "sam"  # sam (around AdamW) or adamw
    rho: float = 0.05
    adaptive: bool = False
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 5
    batch_size: int = 64
    balance: str = "loss"  # loss | none
    label_smoothing: float = 0.1
    teacher_share: float = 0.5  # of the emotion target, when a teacher is given
    augment: str = "full"  # a name in AUGMENTATIONS: full, light or none
    seed: int = 0
    checkpoint: str = None
    resume: bool = False


@dataclass
class EpochLog:
    stage: str
    epoch: int
    train_loss: float
    val_loss: float = None
    val_accuracy: dict = field(default_factory=dict)
    seconds: float = 0.0


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stage_logits(model, stage, face, context, gate):
    """The logits each stage trains and validates."""
    if stage == "face":
        return model.face_branch(face)
    if stage == "context":
        return model.context_branch(context)
    return model(face, context, gate).logits


STAGE_OWNERS = {"face": ["face_encoder", "face_heads"], "context": ["context_encoder", "context_heads"],
                "gate": ["gate_head"]}


def set_stage_mode(model, stage, tasks=None):
    """Train mode for what the stage trains; everything else frozen, in eval mode (batch-norm
    statistics included), so a stage changes nothing it does not own. Returns its parameters.
    With a face backbone per task, the face stage owns only the backbones of ``tasks`` (those
    with labels): another task's backbone would see faces it has no labels for."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    owners = STAGE_OWNERS.get(stage)
    modules = [getattr(model, name) for name in owners] if owners else [model]
    if stage == "face" and model.config.face_backbone_per_task and tasks:
        modules = [model.face_encoder.encoders[task] for task in tasks] + [model.face_heads]
    for module in modules:
        module.train()
        for p in module.parameters():
            p.requires_grad_(True)
    return [p for m in modules for p in m.parameters()]


def stage_items(crops, stage):
    """The context and gate stages learn from where the face is: an image where no face was
    found has the whole image as its box, so its masked context is all black."""
    if stage in ("context", "gate"):
        return crops.subset(i for i in range(len(crops)) if crops.found[crops.rows[i]])
    return crops


def batches(crops, indices, batch_size, size, generator=None, augmentation=None, with_context=True):
    """(face, masked context, unmasked context, emotion, age, age_mask) tensors; the contexts
    are None without ``with_context`` (the face stage reads none). The next batch is made in a
    background thread while the caller runs the network on this one."""
    emotion, age, age_mask = (torch.from_numpy(crops.labels(t)) for t in ("emotion", "age", "age_mask"))

    def make(start):
        chosen = indices[start:start + batch_size]
        faces, contexts, boxes = crops.gather(chosen, with_context)
        if augmentation is not None:
            face, context, gate = training_batch(faces, contexts, boxes, size, generator,
                                                 augmentation, with_context)
        else:
            face, context, gate = plain_batch(faces, contexts, boxes, size, with_context)
        chosen = torch.as_tensor(chosen)
        return face, context, gate, emotion[chosen], age[chosen], age_mask[chosen]

    starts = range(0, len(indices), batch_size)
    with ThreadPoolExecutor(max_workers=1) as pool:  # one batch ahead, in order: deterministic
        pending = pool.submit(make, starts[0]) if starts else None
        for start in starts[1:]:
            ready = pending.result()
            pending = pool.submit(make, start)
            yield ready
        if pending is not None:
            yield pending.result()


@torch.no_grad()
def validate(model, crops, stage, device, batch_size=128):
    model.eval()
    losses, correct, seen = [], {}, {}
    size = model.config.face_size
    for face, context, gate, emotion, age, age_mask in batches(
            crops, np.arange(len(crops)), batch_size, size, with_context=stage != "face"):
        face, context, gate = (None if t is None else t.to(device) for t in (face, context, gate))
        emotion, age, age_mask = emotion.to(device), age.to(device), age_mask.to(device)
        logits = stage_logits(model, stage, face, context, gate)
        loss = compute_loss(logits, emotion, age_mask, {})
        if loss is not None:
            losses.append(loss.item() * len(face))
        for task, target in (("emotion", emotion), ("age", age)):
            known = target >= 0
            if known.any():
                predicted = logits[task][known].argmax(1)
                correct[task] = correct.get(task, 0) + (predicted == target[known]).sum().item()
                seen[task] = seen.get(task, 0) + int(known.sum())
    accuracy = {task: correct[task] / seen[task] for task in seen}
    return (sum(losses) / max(1, len(crops))) if losses else None, accuracy


def make_optimizer(params, options):
    if options.optimizer == "sam":
        return SAM(params, torch.optim.AdamW, rho=options.rho, adaptive=options.adaptive,
                   lr=options.lr, weight_decay=options.weight_decay)
    if options.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    raise ValueError(f"unknown optimizer {options.optimizer!r}: sam or adamw")


def _schedule(optimizer, options, steps, done=0):
    """One-cycle over ``steps``, positioned after ``done`` of them (a resumed run; the base
    optimiser's state must be loaded first). A resumed run may ask for more epochs than the
    stopped one: the cycle is then stretched over the new total. At least ten steps: with fewer
    the warm-up phase is empty."""
    base = optimizer.base_optimizer if isinstance(optimizer, SAM) else optimizer
    return torch.optim.lr_scheduler.OneCycleLR(base, max_lr=options.lr, total_steps=max(10, steps),
                                               pct_start=0.2, last_epoch=done - 1)


def epoch_order(count, seed, epoch):
    """The shuffle of one epoch: a function of the seed and the epoch alone, so a resumed run
    sees exactly the order an uninterrupted one would."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def train_stage(model, stage, train_set, val_set, options, device, report=print, start_epoch=0,
                resume_state=None, history=None, teacher=None):
    """Train one stage for ``options.epochs`` epochs; checkpoint after each. ``teacher``: emotion
    probabilities, one row per face of ``train_set``, that the face stage learns from beside the
    labels (``distilled_loss``)."""
    history = history if history is not None else []
    if teacher is not None and stage != "face":
        raise ValueError(f"a teacher is for the face stage, not the {stage} stage")
    train_set = stage_items(train_set, stage)
    val_set = stage_items(val_set, stage) if val_set is not None else None
    if len(train_set) < 2:
        raise ValueError(f"stage {stage}: fewer than two training images with a face found")
    tasks = [t for t, known in (("emotion", (train_set.labels("emotion") >= 0).any()),
                                ("age", train_set.labels("age_mask").any())) if known]
    weights = {}
    if options.balance == "loss":
        weights = {t: w.to(device) for t in tasks
                   if (w := class_weights(train_set, t, model.config.tasks[t])) is not None}
    params = set_stage_mode(model, stage, tasks)
    optimizer = make_optimizer(params, options)
    batch_size = min(options.batch_size, len(train_set))
    # Batch norm cannot train on a batch of one: a last, incomplete batch is dropped.
    steps_per_epoch = max(1, len(train_set) // batch_size)
    if resume_state:
        optimizer.load_state_dict(resume_state["optimizer"])
    scheduler = _schedule(optimizer, options, options.epochs * steps_per_epoch,
                          done=start_epoch * steps_per_epoch if resume_state else 0)
    augmentation = AUGMENTATIONS[options.augment]
    size = model.config.face_size
    for epoch in range(start_epoch, options.epochs):
        started = time.monotonic()
        set_stage_mode(model, stage, tasks)
        order = epoch_order(len(train_set), options.seed, epoch)[: steps_per_epoch * batch_size]
        generator = torch.Generator().manual_seed(options.seed * 1_000_003 + epoch)
        seed_everything(options.seed * 1_000_003 + epoch)  # dropout
        total, count = 0.0, 0
        for step, (face, context, gate, emotion, age, age_mask) in enumerate(
                batches(train_set, order, batch_size, size, generator, augmentation,
                        with_context=stage != "face"), 1):
            if step % 100 == 0:  # long epochs say how far they are
                report(f"stage {stage} epoch {epoch + 1}/{options.epochs}: batch {step}/{steps_per_epoch}, "
                       f"loss {total / max(1, count):.3f}")
            face, context, gate = (None if t is None else t.to(device) for t in (face, context, gate))
            emotion, age_mask = emotion.to(device), age_mask.to(device)

            taught = None
            if teacher is not None:
                taught = teacher[order[(step - 1) * batch_size: step * batch_size]].to(device)

            def loss_at_current_weights():
                return compute_loss(stage_logits(model, stage, face, context, gate), emotion,
                                    age_mask, weights, options.label_smoothing, taught,
                                    options.teacher_share)

            loss = loss_at_current_weights()
            if loss is None:
                continue
            loss.backward()
            if isinstance(optimizer, SAM):
                optimizer.first_step(zero_grad=True)
                freeze_running_stats(model)
                loss_at_current_weights().backward()
                restore_running_stats(model)
                optimizer.second_step(zero_grad=True)
            else:
                optimizer.step()
                optimizer.zero_grad()
            scheduler.step()
            total += loss.item() * len(face)
            count += len(face)
        entry = EpochLog(stage, epoch + 1, total / max(1, count))
        if val_set is not None and len(val_set):
            entry.val_loss, entry.val_accuracy = validate(model, val_set, stage, device)
        entry.seconds = round(time.monotonic() - started, 1)
        history.append(entry)
        report(describe(entry, options.epochs))
        if options.checkpoint:
            save_checkpoint(options.checkpoint, model, stage, epoch + 1, optimizer, history)
    return history


def describe(entry, epochs):
    accuracy = " ".join(f"{task} {value:.1%}" for task, value in entry.val_accuracy.items())
    val = f" · val loss {entry.val_loss:.3f} · accuracy {accuracy}" if entry.val_loss is not None else ""
    return f"stage {entry.stage} epoch {entry.epoch}/{epochs}: loss {entry.train_loss:.3f}{val} ({entry.seconds:.0f} s)"


def save_checkpoint(path, model, stage, epoch, optimizer, history):
    state = {
        "config": model.config.to_json(),
        "model": model.state_dict(),
        "stage": stage,
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "history": json.dumps([asdict(h) for h in history]),
    }
    with atomic_path(path) as partial:
        torch.save(state, partial)


def load_checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def stages_for(model, stage):
    if model.config.kind != "gated":
        if stage not in ("all",):
            raise ValueError(f"{model.config.kind} models train end to end: use --stage all")
        return ["all"]
    return list(STAGES) if stage == "all" else [stage]


def train(model, train_set, val_set, options, device="cpu", report=print, teacher=None):
    """Run the stages ``options.stage`` names, resuming from the checkpoint if asked;
    ``teacher``: see ``train_stage``."""
    seed_everything(options.seed)
    model.to(device)
    if device == "cpu":
        # Measured on two AVX-512 cores: channels-last float32 trains the depthwise face
        # network 1.4x faster than the default layout; bfloat16 autocast is 5-20x slower.
        model.to(memory_format=torch.channels_last)
    history, start_stage, start_epoch, resume_state = [], None, 0, None
    if options.resume and options.checkpoint and Path(options.checkpoint).is_file():
        state = load_checkpoint(options.checkpoint)
        if state["config"] != model.config.to_json():
            raise ValueError(f"{options.checkpoint} was made with another model configuration; "
                             f"resume with the same options, or delete it to start afresh")
        model.load_state_dict(state["model"])
        history = [EpochLog(**h) for h in json.loads(state["history"])]
        start_stage, start_epoch = state["stage"], state["epoch"]
        resume_state = state
        report(f"resuming after stage {start_stage} epoch {start_epoch}")
    stages = stages_for(model, options.stage)
    if start_stage in stages:
        stages = stages[stages.index(start_stage):]
    for stage in stages:
        resumed = stage == start_stage
        if resumed and start_epoch >= options.epochs:
            continue
        train_stage(model, stage, train_set, val_set, options, device, report,
                    start_epoch=start_epoch if resumed else 0,
                    resume_state=resume_state if resumed else None, history=history,
                    teacher=teacher)
    model.eval()
    return history
