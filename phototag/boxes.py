"""Face boxes (x1, y1, x2, y2): overlap, and which box of one list is which of another.
Standard library only: the store, the detector, export and people all use it."""


def box_iou(a, b):
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched_boxes(old, new, threshold=0.5):
    """Pairs (i, j): box ``old[i]`` is box ``new[j]``, greedily by overlap (IoU ≥ threshold),
    each box used once."""
    pairs = sorted(((box_iou(a, b), i, j) for i, a in enumerate(old) for j, b in enumerate(new)),
                   reverse=True)
    used_old, used_new, matches = set(), set(), []
    for overlap, i, j in pairs:
        if overlap < threshold:
            break
        if i not in used_old and j not in used_new:
            used_old.add(i)
            used_new.add(j)
            matches.append((i, j))
    return matches
