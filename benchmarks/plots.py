"""PNG plots (matplotlib, Agg backend), written to benchmarks/plots/."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import PLOTS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def append_cost(ours: list[tuple[int, int]], theirs: list[tuple[int, int]], failed_at: int | None) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.plot(*zip(*ours, strict=True), marker="o", label="ours: one message item per append")
    if theirs:
        ax.plot(*zip(*theirs, strict=True), label="LangChain DynamoDBChatMessageHistory: whole history rewritten")
    if failed_at is not None and theirs:
        ax.axvline(failed_at, color="red", linestyle="--", linewidth=1)
        ax.annotate(
            f"fails at message {failed_at:,}\n(item > 400 KB)",
            xy=(failed_at, theirs[-1][1]),
            xytext=(failed_at * 1.3, theirs[-1][1] / 4),
            color="red",
            arrowprops={"arrowstyle": "->"},
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("message number in the session")
    ax.set_ylabel("bytes written by that append")
    ax.set_title("Append cost against history length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, "append_cost.png")


def bars(name: str, title: str, ylabel: str, labels: list[str], series: dict[str, list[float]]) -> Path:
    """Grouped bars: one group per label, one bar per series."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    width = 0.8 / max(1, len(series))
    for index, (legend, values) in enumerate(series.items()):
        positions = [i + index * width for i in range(len(labels))]
        ax.bar(positions, values, width, label=legend)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(labels))], labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, name)


def _save(fig, name: str) -> Path:
    PLOTS.mkdir(exist_ok=True)
    path = PLOTS / name
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
