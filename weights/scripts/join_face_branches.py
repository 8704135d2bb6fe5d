"""One weights file with a face backbone per task: the emotion face branch (backbone and head)
of one file, the age face branch of another, the context branch and gates of a third (else of
the age file). Then train the gate stage on it (`weights/train.sh` does).

    python weights/scripts/join_face_branches.py --emotion EMOTION.safetensors --age AGE.safetensors \
        [--context CONTEXT.safetensors] OUT
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from phototag.files import file_sha256  # noqa: E402
from phototag.train.join import join_face_branches  # noqa: E402
from phototag.vision.weightsfile import load_weights, save_weights  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emotion", required=True, help="the file whose face branch answers emotion")
    parser.add_argument("--age", required=True, help="the file whose face branch answers age")
    parser.add_argument("--context", help="the file whose context branch and gates are taken "
                                          "[default: the age file]")
    parser.add_argument("out")
    args = parser.parse_args()
    (emotion, emotion_info), (age, age_info) = load_weights(args.emotion), load_weights(args.age)
    context, context_info = load_weights(args.context) if args.context else (age, age_info)
    try:
        joined = join_face_branches(emotion, age, context)
    except ValueError as exc:
        sys.exit(f"join_face_branches: {exc}")
    # The emotion file's record goes on (it was trained last); both files are named.
    info = {**emotion_info, "command": "python weights/scripts/join_face_branches.py " + " ".join(sys.argv[1:]),
            "earlier_commands": emotion_info.get("earlier_commands", []) + [emotion_info.get("command")],
            "joined": {task: {"file": Path(path).name, "sha256": file_sha256(path),
                              "command": info.get("command")}
                       for task, path, info in (("emotion", args.emotion, emotion_info),
                                                ("age", args.age, age_info),
                                                ("context", args.context or args.age, context_info))}}
    print(save_weights(joined, args.out, info=info))


if __name__ == "__main__":
    main()
