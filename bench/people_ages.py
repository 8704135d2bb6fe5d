"""Which age groups (and emotions) the model gives the faces of real group photos: an index run
over ../shared/data/photos/people (no labels; the question is whether every group people there
belong to is answered at all), counted overall and by face size.

    python -m bench people_ages [--model FILE] [--no-class-shares]
"""

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.class_shares import without_class_shares
from bench.library import PHOTOS, WEIGHTS

SIZES = ((0, 24), (24, 48), (48, 96), (96, None))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="weights file (default: the shipped weights)")
    parser.add_argument("--no-class-shares", action="store_true",
                        help="answer without the class shares the weights file records")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PHOTOTAG_DB=str(Path(tmp) / "index.db"), PHOTOTAG_WEIGHTS=str(WEIGHTS))
        command = [sys.executable, "-m", "phototag", "index", "--quiet", str(PHOTOS / "people")]
        if args.no_class_shares:
            args.model = without_class_shares(args.model, Path(tmp) / "no-shares.safetensors")
        if args.model:
            command[4:4] = ["--model", args.model]
        subprocess.run(command, env=env, check=True)
        db = sqlite3.connect(Path(tmp) / "index.db")
        groups = [name for name, in db.execute("SELECT DISTINCT age_group FROM faces")]
        order = ["baby", "child", "ten-twenty", "thirty-forty", "fifty", "senior"]
        groups = [g for g in order if g in groups] + [g for g in groups if g not in order]
        total = db.execute("SELECT count(*) FROM faces").fetchone()[0]
        print(f"{total} faces in {PHOTOS / 'people'}")
        print("face size (shorter box side) | " + " | ".join(groups))
        for low, high in SIZES:
            where = f"min(x2 - x1, y2 - y1) >= {low}" + (f" AND min(x2 - x1, y2 - y1) < {high}" if high else "")
            counts = dict(db.execute(f"SELECT age_group, count(*) FROM faces WHERE {where} GROUP BY age_group"))
            label = f"{low}-{high} px" if high else f"{low} px or more"
            print(f"{label} | " + " | ".join(str(counts.get(g, 0)) for g in groups))
        counts = dict(db.execute("SELECT age_group, count(*) FROM faces GROUP BY age_group"))
        print("all | " + " | ".join(str(counts.get(g, 0)) for g in groups))
        emotions = db.execute("SELECT emotion, count(*) FROM faces GROUP BY emotion ORDER BY 2 DESC").fetchall()
        print("emotions: " + ", ".join(f"{name} {count}" for name, count in emotions))


if __name__ == "__main__":
    main()
