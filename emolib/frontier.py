"""The accuracy–CPU-time frontier: PublicTest accuracy against training minutes, per recipe.

What does another hour of CPU buy? Each point is one recipe trained to the end of its schedule
(a cosine schedule cut short is not the same recipe with fewer epochs), scored on PublicTest only.
``recorded()`` reads the recipes measured in earlier sessions (``assets/recipes.csv``: recipe,
model, PublicTest accuracy, minutes on both cores of the 2-core dev machine, and where the
numbers come from); notebook 02 adds the runs it just trained and draws ``chart``.
"""

from __future__ import annotations

from pathlib import Path

RECIPES = Path(__file__).resolve().parent / "assets" / "recipes.csv"
COLUMNS = ["recipe", "model", "public_test_accuracy", "train_minutes", "machine", "source"]


def recorded():
    """The recipes measured so far, as a pandas DataFrame with ``COLUMNS``."""
    import pandas as pd

    return pd.read_csv(RECIPES)[COLUMNS]


def add(table, recipe: str, model: str, public_test_accuracy: float, train_minutes: float,
        machine: str, source: str):
    """``table`` with one more recipe (a new DataFrame; a recipe of the same name is replaced)."""
    import pandas as pd

    row = pd.DataFrame([dict(zip(COLUMNS, (recipe, model, float(public_test_accuracy),
                                           float(train_minutes), machine, source)))])
    return pd.concat([table[table["recipe"] != recipe], row], ignore_index=True)


def pareto(table):
    """The recipes no other recipe beats in both accuracy and time, fastest first."""
    ordered = table.sort_values(["train_minutes", "public_test_accuracy"],
                                ascending=[True, False])
    best, keep = -1.0, []
    for index, row in ordered.iterrows():
        if row["public_test_accuracy"] > best:
            best = row["public_test_accuracy"]
            keep.append(index)
    return ordered.loc[keep]


def chart(table, title: str = "What training time buys (PublicTest accuracy)"):
    """Accuracy against training minutes, one marker per model family, the frontier as a step."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8.5, 4.8))
    for model, group in table.groupby("model", sort=False):
        axis.scatter(group["train_minutes"], group["public_test_accuracy"] * 100, s=45,
                     label=model, zorder=3)
    front = pareto(table)
    axis.step(front["train_minutes"], front["public_test_accuracy"] * 100, where="post",
              color="grey", alpha=0.6, zorder=2, label="frontier")
    for number, (_, row) in enumerate(table.iterrows(), 1):
        axis.annotate(str(number), (row["train_minutes"], row["public_test_accuracy"] * 100),
                      textcoords="offset points", xytext=(6, 4), fontsize=9)
    axis.set_xlabel("training minutes (both cores of the 2-core dev machine)")
    axis.set_ylabel("PublicTest accuracy (%)")
    axis.set_title(title, fontsize=11)
    low = table["public_test_accuracy"].min() * 100
    high = table["public_test_accuracy"].max() * 100
    axis.set_ylim(low - 1.5, high + 1.5)
    axis.set_xlim(0, table["train_minutes"].max() * 1.15)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    legend = "\n".join(f"{n}. {recipe}" for n, recipe in enumerate(table["recipe"], 1))
    figure.text(0.01, -0.02, legend, fontsize=8, va="top", ha="left")
    figure.tight_layout()
    return figure
