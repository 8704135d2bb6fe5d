"""A "model soup": one weights file whose tensors are the mean of several files fine-tuned from
the same start (same configuration), to score with `weights/scripts/promote.py OUT SHIPPED_COPY`.

    python -m bench weight_soup OUT.safetensors WEIGHTS WEIGHTS [WEIGHTS ...]

The first file gives the configuration (class shares included) and the training record; the
others must build the same model.
"""

import sys


def weight_soup(out, files):
    from phototag.vision.weightsfile import load_weights, save_weights

    model, info = load_weights(files[0])
    states = [model.state_dict()] + [load_weights(path)[0].state_dict() for path in files[1:]]
    mean = {name: (sum(state[name].float() for state in states) / len(states)).to(tensor.dtype)
            if tensor.is_floating_point() else tensor
            for name, tensor in states[0].items()}
    model.load_state_dict(mean)
    save_weights(model, out, info={**info, "averaged": [str(path) for path in files]}, half=True)
    return str(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3:
        sys.exit(__doc__)
    print(weight_soup(argv[0], argv[1:]))


if __name__ == "__main__":
    main()
