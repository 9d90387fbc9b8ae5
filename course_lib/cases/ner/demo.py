"""The course's small trained model: a Transformer tagger for MSRA NER whose attention chapters explore.

Chapter 02 looks inside its attention heads; chapter 03 trains the same recipe with each kind of
positional encoding to measure what position information is worth. Training takes about half a
minute in fast mode on a laptop CPU, so the tagger is cached (:func:`course_lib.train.cache.load_or_train`)
and later calls load it in about a second.

Fast mode trains one epoch over 24,000 training sentences with length bucketing; full mode
trains a wider model on the whole training set for up to 10 epochs with early stopping on dev
F1. On a CPU the training runs on one thread: the matrices of a 64-wide model are too small for
intra-op parallelism to pay.
"""

from __future__ import annotations


from course_lib.cases.ner.tagger import TAGGER_KEY, build_tagger, TaggerRecipe, fit_tagger, lazy_msra, tagger_vocab, training_sentences
from course_lib.context import CourseContext, check_mode, context_mode_and_device
from course_lib.data import CharVocab, NerCorpus
from course_lib.nn.positional import POSITIONAL_KINDS
from course_lib.nn.transformer import TokenTagger
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained


def demo_recipe(mode: str, positional: str = "sinusoidal") -> TaggerRecipe:
    """The course's demo-tagger recipe for ``mode`` ("fast" or "full") with the given positional encoding (chapter 02)."""
    check_mode(mode)
    if mode == "fast":
        return TaggerRecipe(positional=positional)
    return TaggerRecipe(positional=positional, d_model=128, d_ff=512, dropout=0.1, train_sentences=None, epochs=10,
                        lr=1e-3, patience=3)


def demo_tagger(
    context: CourseContext,
    *,
    positional: str | None = None,
    recipe: TaggerRecipe | None = None,
    corpus: NerCorpus | None = None,
    progress: bool = True,
) -> Trained:
    """Load the cached demo tagger for ``context.mode``, or train and cache it first (chapter 02).

    ``positional`` picks the positional encoding ("sinusoidal" by default, "learned" or "none")
    of the course recipe :func:`demo_recipe`; ``recipe`` replaces that recipe entirely (its own
    ``positional`` then applies). ``corpus`` is the MSRA corpus when already loaded (it is loaded
    otherwise, and only when the tagger must be trained). ``metrics["dev_f1"]`` is its entity F1
    on the dev split; the model is in eval mode on ``context.device``; ``vocab`` reads text for it.
    """
    mode, device = context_mode_and_device(context)
    if recipe is None:
        recipe = demo_recipe(mode, positional or "sinusoidal")
    elif not isinstance(recipe, TaggerRecipe):
        raise TypeError(f"recipe must be a TaggerRecipe or None, got {type(recipe).__name__}")
    elif positional is not None and positional != recipe.positional:
        raise ValueError(f"positional={positional!r} contradicts recipe.positional={recipe.positional!r}; "
                         "pass only the recipe")
    if positional is not None and positional not in POSITIONAL_KINDS:
        raise ValueError(f"positional must be one of {POSITIONAL_KINDS}, got {positional!r}")
    msra = lazy_msra(corpus)

    def train(model: TokenTagger, vocab: CharVocab) -> Trained:
        return fit_tagger(model, recipe, training_sentences(msra(), recipe), msra().dev, vocab,
                          param_groups=[{"params": list(model.parameters())}], device=device, progress=progress,
                          desc=f"demo tagger ({recipe.positional})")

    return load_or_train(model_path(f"demo_tagger_{recipe.positional}", mode), recipe,
                         build=lambda vocab: build_tagger(recipe, len(vocab)), train=train,
                         vocab=lambda: tagger_vocab(msra(), recipe), depends_on=TAGGER_KEY, device=device)
