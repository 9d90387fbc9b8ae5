"""course_lib: the tested library behind the course
"Transformers in practice: the teacher/student architecture (knowledge distillation)".

Map of the package — each room imports only from the rooms above it in this list:

    files.py, checks.py, context.py   atomic writes and sha256; the shared argument checks; the run
                                      (fast/full mode, device, seed, results folder)
    data/     real data from package registries (MNIST, MSRA NER, news, Tang poetry), batching, jitter, the cache
    nn/       models only: attention, positional encodings, the Transformer, the MLP, the BiLSTM, the language model
    train/    the one training loop, fit() around it, recipes, checkpoints, the model cache, token scoring, latency
    kd/       distillation: losses, the frozen teacher, distillers, layer maps, the method registry, cascade
    serve/    bundles, ONNX export and int8, predictors and their command line
    cases/    each case is data + recipes + models: MNIST, MSRA NER, news, poetry, deployment
    views/    everything that draws: figures, explorers, widgets, the live lab, tables
    course/   course map, notebook runner, results, the benchmark harness, glossary, timeline, resources,
              environment check, lecture deck, distillation pitfalls

Every public function and class names the chapter that introduces it at the end of its docstring's first line.
"""

__version__ = "0.1.0"
