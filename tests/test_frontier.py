"""The accuracy-time frontier: recorded recipes load, the Pareto set is right, the chart draws."""

from __future__ import annotations

import pandas as pd

from emolib import frontier


def test_recorded_recipes_have_every_column_and_sane_values():
    table = frontier.recorded()
    assert list(table.columns) == frontier.COLUMNS and len(table) >= 3
    assert table["public_test_accuracy"].between(0.3, 0.9).all()
    assert (table["train_minutes"] > 0).all() and table["source"].str.len().min() > 10


def test_pareto_keeps_only_recipes_nothing_beats_in_both():
    table = pd.DataFrame({"recipe": list("abcd"), "model": "m", "machine": "x", "source": "y",
                          "public_test_accuracy": [0.60, 0.65, 0.62, 0.70],
                          "train_minutes": [10, 30, 40, 90]})
    assert list(frontier.pareto(table)["recipe"]) == ["a", "b", "d"]  # c: slower and worse than b


def test_add_replaces_a_recipe_of_the_same_name_and_chart_numbers_every_point():
    import matplotlib

    matplotlib.use("Agg")
    table = frontier.add(frontier.recorded(), "new", "emonet", 0.7, 80, "here", "a test")
    table = frontier.add(table, "new", "emonet", 0.71, 81, "here", "a test")
    assert (table["recipe"] == "new").sum() == 1 and table["public_test_accuracy"].max() == 0.71
    figure = frontier.chart(table)
    numbers = [t.get_text() for t in figure.axes[0].texts]
    assert numbers == [str(n) for n in range(1, len(table) + 1)]
