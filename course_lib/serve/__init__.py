"""Serving a trained model (chapter 08): bundles, ONNX export and int8, predictors and the command line."""
