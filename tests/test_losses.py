"""The training loss for age ranges and the age metrics that know groups are ordered."""

import torch
import torch.nn.functional as F

from phototag.train.evaluate import neighbour_errors
from phototag.train.losses import age_allowed, compute_loss, distilled_loss, partial_label_loss


def test_one_allowed_group_is_plain_weighted_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(8, 6), torch.randint(0, 6, (8,))
    weight = torch.rand(6) + 0.5
    allowed = F.one_hot(target, 6).bool()
    assert torch.allclose(partial_label_loss(logits, allowed, weight),
                          F.cross_entropy(logits, target, weight=weight))


def test_a_range_is_trained_as_one_of_its_groups():
    logits = torch.tensor([[0.0, 2.0, 1.0, -1.0, 0.0, 0.0]])
    allowed = torch.tensor([[False, True, True, False, False, False]])
    expected = -torch.log(logits.softmax(1)[0, 1:3].sum())
    assert torch.allclose(partial_label_loss(logits, allowed), expected)
    # Learning from the range alone moves the mass into the two groups, not into one of them.
    logits = torch.zeros(1, 6, requires_grad=True)
    optimiser = torch.optim.SGD([logits], lr=1.0)
    for _ in range(200):
        optimiser.zero_grad()
        partial_label_loss(logits, allowed).backward()
        optimiser.step()
    p = logits.softmax(1)[0]
    assert p[1] + p[2] > 0.95 and abs(p[1] - p[2]) < 1e-4


def test_compute_loss_mixes_exact_ages_ranges_and_missing_labels():
    torch.manual_seed(1)
    logits = {"emotion": torch.randn(3, 6), "age": torch.randn(3, 6)}
    emotion = torch.tensor([2, -1, -1])  # the age labels are in the mask: bit 4, bits 1 and 2
    mask = torch.tensor([0, 1 << 4, 0b110])
    loss = compute_loss(logits, emotion, mask, {})
    allowed = torch.tensor([[False] * 6, [False] * 4 + [True, False], [False, True, True] + [False] * 3])
    expected = F.cross_entropy(logits["emotion"][:1], emotion[:1]) + \
        partial_label_loss(logits["age"], allowed)
    assert torch.allclose(loss, expected)
    assert compute_loss(logits, torch.full((3,), -1), torch.zeros(3, dtype=torch.long), {}) is None


def test_neighbouring_age_groups_are_counted_apart():
    confusion = torch.tensor([[5, 1, 0], [0, 3, 2], [1, 0, 8]])
    scores = neighbour_errors(confusion)
    assert abs(scores["accuracy_within_one"] - 19 / 20) < 1e-9
    assert abs(scores["adjacent_share_of_errors"] - 3 / 4) < 1e-9


def test_distilled_loss_with_no_teacher_share_is_the_usual_cross_entropy():
    torch.manual_seed(2)
    logits, target = torch.randn(8, 6), torch.randint(0, 6, (8,))
    teacher = torch.rand(8, 6).softmax(1)
    assert torch.allclose(distilled_loss(logits, target, teacher, 0.0, label_smoothing=0.1),
                          F.cross_entropy(logits, target, label_smoothing=0.1))
    weight = torch.rand(6) + 0.5
    assert torch.allclose(distilled_loss(logits, target, teacher, 0.0, weight),
                          F.cross_entropy(logits, target, weight=weight))


def test_distilled_loss_pulls_the_answer_towards_the_mix_of_label_and_teacher():
    teacher = torch.tensor([[0.1, 0.6, 0.1, 0.1, 0.05, 0.05], [0.2] * 5 + [0.0]])
    target = torch.tensor([0, -1])  # the second face has no emotion label: it is left out
    logits = torch.zeros(2, 6, requires_grad=True)
    optimiser = torch.optim.SGD([logits], lr=1.0)
    for _ in range(500):
        optimiser.zero_grad()
        distilled_loss(logits, target, teacher, 0.5).backward()
        optimiser.step()
    expected = 0.5 * F.one_hot(torch.tensor(0), 6) + 0.5 * teacher[0]
    assert torch.allclose(logits.softmax(1)[0], expected, atol=1e-3)
    assert torch.equal(logits[1].detach(), torch.zeros(6))


def test_compute_loss_takes_the_teacher_for_emotion_only():
    torch.manual_seed(3)
    logits = {"emotion": torch.randn(2, 6), "age": torch.randn(2, 6)}
    emotion, mask = torch.tensor([1, 4]), torch.tensor([1 << 2, 0])
    teacher = torch.rand(2, 6).softmax(1)
    loss = compute_loss(logits, emotion, mask, {}, 0.1, teacher, 0.3)
    expected = distilled_loss(logits["emotion"], emotion, teacher, 0.3, label_smoothing=0.1) + \
        partial_label_loss(logits["age"], age_allowed(mask, 6))
    assert torch.allclose(loss, expected)
