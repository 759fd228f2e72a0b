"""The model adapters: torch for training (the ``train`` extra), onnxruntime for scoring (the
``score`` extra). Import the module you need; this package root imports neither."""
