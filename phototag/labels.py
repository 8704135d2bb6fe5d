"""The label sets and age bins: the single source every other module reads."""

EMOTIONS = ("smile", "sad", "angry", "anxiety", "surprise", "neutral")

# Inclusive year ranges; the last bin is open-ended.
AGE_BINS = (
    ("baby", 0, 2),
    ("child", 3, 9),
    ("ten-twenty", 10, 29),
    ("thirty-forty", 30, 49),
    ("fifty", 50, 59),
    ("senior", 60, None),
)
AGE_GROUPS = tuple(name for name, _, _ in AGE_BINS)


def age_group(years):
    """The age group a whole number of years falls in."""
    if years < 0:
        raise ValueError(f"age cannot be negative: {years}")
    for name, low, high in AGE_BINS:
        if years >= low and (high is None or years <= high):
            return name
    raise AssertionError("age bins do not cover every age")
