"""Training the attribute models: the three stages of the original design, SAM or Adam.

Stage ``face`` trains the face branch alone, ``context`` the context branch alone, ``gate``
trains only GatingNet's head on the final gated logits — the context backbone and attention it
shares with the context branch are frozen, and so is everything else. CAER-Net and the fusion
variant train end to end (stage ``all``).
"""

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from ..library.decode import decode_bytes
from .datasets import DECODE_SIZE
from .regions import face_regions, photo_tensor
from .sam import SAM, freeze_running_stats, restore_running_stats

STAGES = ("face", "context", "gate")


@dataclass
class TrainOptions:
    stage: str = "all"
    optimizer: str = "sam"
    rho: float = 0.05
    adaptive: bool = False
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 5
    batch_size: int = 64
    balance: str = "loss"  # loss | sampler | none
    augment: bool = True
    seed: int = 0
    workers: int = 0
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


def random_jitter(generator, size, shift=0.04, scale=0.06, degrees=8.0):
    """A small random similarity about the centre of a ``size`` crop: the aligned face moves,
    turns and grows a little. Returns (A, b) acting on output pixel coordinates."""
    s = 1.0 + (torch.rand(1, generator=generator).item() * 2 - 1) * scale
    angle = math.radians((torch.rand(1, generator=generator).item() * 2 - 1) * degrees)
    A = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) * s
    centre = torch.full((2,), size / 2.0)
    move = (torch.rand(2, generator=generator) * 2 - 1) * shift * size
    return A, centre - A @ centre + move


class FaceCrops(Dataset):
    """Items with located faces → (face, context, gate, emotion, age, age_mask): crops, the
    label indices (-1: unknown) and the bit mask of the age groups the label allows."""

    def __init__(self, items, faces, config, augment=False, seed=0):
        kept = [(item, face) for item, face in zip(items, faces) if face is not None]
        self.items = [item for item, _ in kept]
        self.faces = [face for _, face in kept]
        self.config = config
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self):
        return len(self.items)

    def labels(self, task):
        return [getattr(item, task) for item in self.items]

    def __getitem__(self, i):
        item = self.items[i]
        box, landmarks, _ = self.faces[i]
        pixels = decode_bytes(Path(item.path).read_bytes(), DECODE_SIZE)[0]
        photo = photo_tensor(pixels)
        boxes = torch.tensor([box], dtype=torch.float32)
        points = torch.tensor([landmarks], dtype=torch.float32)
        jitter = None
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 10_007 + i)
        if self.augment:
            A, b = random_jitter(generator, self.config.face_size)
            jitter = (A[None], b[None])
        regions = face_regions(photo, boxes, points, self.config.face_size,
                               self.config.context_size, self.config.context_scale, jitter)
        face, context, gate = regions.face[0], regions.context[0], regions.gates_per_face()[0]
        if self.augment:
            if torch.rand(1, generator=generator).item() < 0.5:
                face, context, gate = face.flip(-1), context.flip(-1), gate.flip(-1)
            gain = 1.0 + (torch.rand(1, generator=generator).item() * 2 - 1) * 0.2
            face, context, gate = ((t * gain).clamp(0, 1) for t in (face, context, gate))
        return face, context, gate, item.emotion, item.age, item.age_mask


def _loader(dataset, options, shuffle, tasks):
    sampler = None
    if shuffle and options.balance == "sampler":
        weights = torch.zeros(len(dataset))
        for task in tasks:
            labels = torch.tensor(dataset.labels(task))
            counts = torch.bincount(labels[labels >= 0], minlength=1).float()
            known = labels >= 0
            weights[known] += 1.0 / counts[labels[known]]
        sampler = WeightedRandomSampler(weights, len(dataset),
                                        generator=torch.Generator().manual_seed(options.seed))
    # Batch norm cannot train on a batch of one: drop a last, incomplete training batch.
    drop_last = shuffle and len(dataset) > options.batch_size
    return DataLoader(dataset, batch_size=options.batch_size, shuffle=shuffle and sampler is None,
                      sampler=sampler, num_workers=options.workers, drop_last=drop_last,
                      generator=torch.Generator().manual_seed(options.seed) if shuffle else None)


def class_weights(dataset, task, classes):
    labels = torch.tensor(dataset.labels(task))
    labels = labels[labels >= 0]
    if not len(labels):
        return None
    counts = torch.bincount(labels, minlength=classes).float()
    weights = torch.where(counts > 0, counts.sum() / (classes * counts.clamp_min(1)), torch.zeros(()))
    return weights


def stage_logits(model, stage, face, context, gate):
    """The logits each stage trains and validates."""
    if stage == "face":
        return model.face_branch(face)
    if stage == "context":
        return model.context_branch(context)
    return model(face, context, gate).logits


def trainable_parameters(model, stage):
    if stage == "face":
        modules = [model.face_encoder, model.face_heads]
    elif stage == "context":
        modules = [model.context_encoder, model.context_heads]
    elif stage == "gate":
        modules = [model.gate_head]
    else:
        modules = [model]
    return [p for m in modules for p in m.parameters()]


def set_stage_mode(model, stage):
    """Train mode for what the stage trains; everything else frozen, in eval mode (batch-norm
    statistics included), so a stage changes nothing it does not own."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    params = trainable_parameters(model, stage)
    for p in params:
        p.requires_grad_(True)
    owners = {"face": ["face_encoder", "face_heads"], "context": ["context_encoder", "context_heads"],
              "gate": ["gate_head"]}.get(stage)
    if owners is None:
        model.train()
    else:
        for name in owners:
            getattr(model, name).train()
    return params


def age_allowed(age_mask, groups):
    """Bit masks → N×groups booleans."""
    bits = 1 << torch.arange(groups, device=age_mask.device)
    return (age_mask.unsqueeze(1) & bits) != 0


def partial_label_loss(logits, allowed, weight=None):
    """-log P(answer is one of the allowed groups), averaged like weighted cross-entropy: with
    one allowed group it is cross-entropy; an age range over two groups is trained as such
    instead of being guessed into one. A row's weight is the mean of its groups' weights."""
    known = allowed.any(1)
    logits, allowed = logits[known], allowed[known]
    loss = logits.logsumexp(1) - logits.masked_fill(~allowed, float("-inf")).logsumexp(1)
    if weight is None:
        return loss.mean()
    row_weight = (allowed.float() * weight).sum(1) / allowed.sum(1)
    return (loss * row_weight).sum() / row_weight.sum().clamp_min(1e-12)


def compute_loss(logits, emotion, age_mask, weights):
    """Emotion: cross-entropy over known labels (-1: none). Age: the partial-label loss over the
    groups each ``age_mask`` allows (0: none), so exact ages and ranges train alike."""
    total, parts = 0.0, 0
    if "emotion" in logits and (emotion >= 0).any():
        total = total + F.cross_entropy(logits["emotion"], emotion, weight=weights.get("emotion"),
                                        ignore_index=-1)
        parts += 1
    if "age" in logits:
        allowed = age_allowed(age_mask, logits["age"].shape[1])
        if allowed.any():
            total = total + partial_label_loss(logits["age"], allowed, weights.get("age"))
            parts += 1
    return total if parts else None


@torch.no_grad()
def validate(model, loader, stage, device, weights=None):
    model.eval()
    losses, correct, seen = [], {}, {}
    for face, context, gate, emotion, age, age_mask in loader:
        face, context, gate = face.to(device), context.to(device), gate.to(device)
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
    return (sum(losses) / max(1, len(loader.dataset))) if losses else None, accuracy


def _make_optimizer(params, options):
    if options.optimizer == "sam":
        return SAM(params, torch.optim.AdamW, rho=options.rho, adaptive=options.adaptive,
                   lr=options.lr, weight_decay=options.weight_decay)
    if options.optimizer == "adam":
        return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    raise ValueError(f"unknown optimizer {options.optimizer!r}: sam or adam")


def _schedule(optimizer, options, steps, done=0):
    """One-cycle over ``steps``, positioned after ``done`` of them (a resumed run; the base
    optimiser's state must be loaded first). A resumed run may ask for more epochs than the
    stopped one: the cycle is then stretched over the new total."""
    base = optimizer.base_optimizer if isinstance(optimizer, SAM) else optimizer
    return torch.optim.lr_scheduler.OneCycleLR(base, max_lr=options.lr, total_steps=max(1, steps),
                                               pct_start=0.2, last_epoch=done - 1)


def train_stage(model, stage, train_set, val_set, options, device, report=print, start_epoch=0,
                resume_state=None, history=None):
    """Train one stage for ``options.epochs`` epochs; checkpoint after each."""
    history = history if history is not None else []
    # An age range alone (age -1, age_mask set) is an age label too.
    tasks = [t for t, known in (("emotion", any(v >= 0 for v in train_set.labels("emotion"))),
                                ("age", any(train_set.labels("age_mask")))) if known]
    weights = {}
    if options.balance == "loss":
        weights = {t: w.to(device) for t in tasks
                   if (w := class_weights(train_set, t, model.config.tasks[t])) is not None}
    params = set_stage_mode(model, stage)
    optimizer = _make_optimizer(params, options)
    loader = _loader(train_set, options, shuffle=True, tasks=tasks)
    if resume_state:
        optimizer.load_state_dict(resume_state["optimizer"])
    scheduler = _schedule(optimizer, options, options.epochs * len(loader),
                          done=start_epoch * len(loader) if resume_state else 0)
    val_loader = _loader(val_set, options, shuffle=False, tasks=tasks) if val_set else None
    for epoch in range(start_epoch, options.epochs):
        started = time.monotonic()
        set_stage_mode(model, stage)
        train_set.epoch = epoch
        seed_everything(options.seed + epoch)
        total, count = 0.0, 0
        for step, (face, context, gate, emotion, age, age_mask) in enumerate(loader, 1):
            if step % 200 == 0:  # long epochs say how far they are
                report(f"stage {stage} epoch {epoch + 1}/{options.epochs}: batch {step}/{len(loader)}, "
                       f"loss {total / max(1, count):.3f}")
            face, context, gate = face.to(device), context.to(device), gate.to(device)
            emotion, age, age_mask = emotion.to(device), age.to(device), age_mask.to(device)

            def closure():
                loss = compute_loss(stage_logits(model, stage, face, context, gate), emotion,
                                    age_mask, weights)
                loss.backward()
                return loss

            if len(face) < 2:
                continue
            loss = compute_loss(stage_logits(model, stage, face, context, gate), emotion,
                                age_mask, weights)
            if loss is None:
                continue
            loss.backward()
            if isinstance(optimizer, SAM):
                optimizer.first_step(zero_grad=True)
                freeze_running_stats(model)
                closure()
                restore_running_stats(model)
                optimizer.second_step(zero_grad=True)
            else:
                optimizer.step()
                optimizer.zero_grad()
            scheduler.step()
            total += loss.item() * len(face)
            count += len(face)
        entry = EpochLog(stage, epoch + 1, total / max(1, count), seconds=0.0)
        if val_loader:
            entry.val_loss, entry.val_accuracy = validate(model, val_loader, stage, device)
        entry.seconds = round(time.monotonic() - started, 1)
        history.append(entry)
        report(_describe(entry, options.epochs))
        if options.checkpoint:
            save_checkpoint(options.checkpoint, model, stage, epoch + 1, optimizer, history)
    return history


def _describe(entry, epochs):
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
    tmp = f"{path}.part"
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def stages_for(model, stage):
    if model.config.kind != "gated":
        if stage not in ("all",):
            raise ValueError(f"{model.config.kind} models train end to end: use --stage all")
        return ["all"]
    return list(STAGES) if stage == "all" else [stage]


def train(model, train_set, val_set, options, device="cpu", report=print):
    """Run the stages ``options.stage`` names, resuming from the checkpoint if asked."""
    seed_everything(options.seed)
    model.to(device)
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
                    resume_state=resume_state if resumed else None, history=history)
    model.eval()
    return history
