"""Tests for course_lib.train.recipe: one recipe base, checked once, named by its fingerprint."""

from __future__ import annotations

import dataclasses

import pytest

from course_lib.train.recipe import Recipe, cap_epochs


@dataclasses.dataclass(frozen=True)
class ShapedRecipe(Recipe):
    width: int = 8

    def check(self) -> None:
        if self.width < 1:
            raise ValueError(f"width must be a positive int, got {self.width!r}")


def test_the_fingerprint_names_the_recipe_and_its_class():
    assert Recipe().fingerprint() == Recipe().fingerprint()
    assert Recipe(lr=2e-3).fingerprint() != Recipe().fingerprint()
    assert ShapedRecipe().fingerprint() != Recipe().fingerprint(), "another kind of recipe is another recipe"
    assert ShapedRecipe(width=4).to_dict()["width"] == 4 and ShapedRecipe(**ShapedRecipe().to_dict()) == ShapedRecipe()


@pytest.mark.parametrize("fields, message", [
    ({"epochs": 0}, "epochs must be a positive int"),
    ({"optimizer": "adam"}, r"optimizer must be one of \('adamw', 'sgd'\)"),
    ({"lr": -1}, "lr must be a number > 0"),
    ({"momentum": 1.0}, r"momentum must be a number in \[0, 1\)"),
    ({"warmup_fraction": 1.0}, r"warmup_fraction must be a number in \[0, 1\)"),
    ({"clip_grad_norm": 0}, "clip_grad_norm must be a number > 0"),
    ({"patience": 0}, "patience must be a positive int or None"),
    ({"seed": -1}, "seed must be an int >= 0"),
    ({"threads": 0}, "threads must be a positive int"),
    ({"width": 0}, "width must be a positive int"),
])
def test_every_field_is_checked_once_when_the_recipe_is_made(fields, message):
    with pytest.raises(ValueError, match=message):
        ShapedRecipe(**fields)


def test_cap_epochs_caps_the_teacher_and_the_students_apart():
    recipes = {"teacher": Recipe(epochs=10), "student": Recipe(epochs=10), "other": Recipe(epochs=2)}
    capped = cap_epochs(recipes, 3, 1)
    assert {role: r.epochs for role, r in capped.items()} == {"teacher": 3, "student": 1, "other": 1}
    assert cap_epochs(recipes, None) == recipes
    assert {role: r.epochs for role, r in cap_epochs(recipes, 4).items()} == {"teacher": 4, "student": 4, "other": 2}
