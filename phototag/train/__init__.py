"""Training and evaluating the attribute models: datasets, stored crops, augmentation, losses,
SAM, the training loop, evaluation, pretrained starts, and the ``train``/``eval`` commands.
An index run never imports anything here."""
