"""A "model soup": one weights file whose tensors are the mean of several files fine-tuned from
the same start (same configuration), to score with `weights/promote.py OUT SHIPPED_COPY`.

    python bench/weight_soup.py OUT.safetensors WEIGHTS WEIGHTS [WEIGHTS ...]

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


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    print(weight_soup(sys.argv[1], sys.argv[2:]))
