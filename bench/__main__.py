"""python -m bench NAME [OPTIONS]: run one benchmark (bench/NAME.py); with no NAME, list them.

Each benchmark prints what it ran on and the ratios it measured in that one run; docs/ keeps
the numbers the documentation states, with the command that gave them."""

import importlib
import pkgutil
import sys
from pathlib import Path

HELPERS = {"answers", "library", "machine", "timing", "class_shares"}


def benchmarks():
    folder = Path(__file__).resolve().parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(folder)])
                   if m.name not in HELPERS and not m.name.startswith("_"))
    return names


def summary(name):
    source = (Path(__file__).resolve().parent / f"{name}.py").read_text()
    doc = source.split('"""')[1] if source.startswith('"""') else ""
    return " ".join(doc.split("\n\n")[0].split())


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        for name in benchmarks():
            print(f"  {name:<20} {summary(name)[:100]}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in benchmarks():
        print(f"no benchmark {name!r}; python -m bench lists them", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{name}")
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
