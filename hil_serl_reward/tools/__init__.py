"""The command-line tools: train_classifier, evaluate, inspect_checkpoint, preview_crops and
the demo."""
