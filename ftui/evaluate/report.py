"""A self-contained HTML report of a run's comparison, for stakeholders.

One file, no scripts and no network: the scores table, a bar chart of the scores and the
training curves as inline SVG (matplotlib), the best and worst examples side by side with the
reference, the forgetting check when it was run, the files the run was exported to (merged
folders, GGUF files), and the run's config (secrets already masked in config.yaml). Charts use
matplotlib's object API (no pyplot state), so threads are safe.

    html = report_html(run, eval_report, forgetting)   # write it anywhere, open in a browser
"""

from __future__ import annotations

import html
import io
from typing import Any

import pandas as pd

from ftui.evaluate.compare import TITLES, VARIANTS
from ftui.export import read_exports
from ftui.runs.rundir import RunDir

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .35rem .6rem; vertical-align: top; text-align: left; }
th { background: #f3f3f3; } pre { background: #f7f7f7; padding: 1rem; overflow-x: auto; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; } .charts svg { max-width: 34rem; }
"""


def report_html(run: RunDir, report: dict[str, Any], forgetting: dict | None = None) -> str:
    config = run.read_config()
    parts = [
        f"<h1>{_e(config.name)}: base vs few-shot vs fine-tuned</h1>",
        f"<p>{_e(config.description)}</p>",
        f"<p>Run <code>{_e(run.run_id)}</code>, method <b>{_e(config.method.name)}</b> on "
        f"<b>{_e(config.model.name_or_path)}</b>; {report['examples_scored']} held-out "
        f"examples, {report['kind']} task, primary metric <b>{report['primary']}</b>.</p>",
        "<h2>Scores</h2>",
        scores_frame(report).to_html(float_format="%.3f", border=0),
        '<div class="charts">',
        _svg(_score_chart(report)),
        _svg(_curve_chart(run)),
        "</div>",
        "<h2>Best cases of the fine-tuned model</h2>",
        _examples_table(report, report["best"]),
        "<h2>Worst cases of the fine-tuned model</h2>",
        _examples_table(report, report["worst"]),
    ]
    if forgetting:
        parts += ["<h2>Forgetting check</h2>", _forgetting_html(forgetting)]
    exported = read_exports(run)
    if exported:
        parts += ["<h2>Exported files</h2>", _exports_table(exported)]
    parts += ["<h2>Config</h2>", f"<pre>{_e(run.config_path.read_text(encoding='utf-8'))}</pre>"]
    body = "\n".join(parts)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(config.name)} — ftui "
        f"report</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def scores_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Variants as rows, metrics as columns."""
    rows = {TITLES[v]: {m: report["summary"][v][m] for m in report["metrics"]} for v in VARIANTS}
    return pd.DataFrame.from_dict(rows, orient="index")


def _examples_table(report: dict[str, Any], indexes: list[int]) -> str:
    primary = report["primary"]
    rows = []
    for index in indexes:
        example = report["examples"][index]
        row = {"Prompt": example["prompt"], "Reference": example["reference"]}
        for variant in VARIANTS:
            score = example[f"{variant}_scores"][primary]
            row[TITLES[variant]] = f"{example[variant]}  [{primary} {score:.2f}]"
        rows.append(row)
    return pd.DataFrame(rows).to_html(index=False, border=0)


def _exports_table(exported: list[dict[str, Any]]) -> str:
    """Each export of the run: what, where in the workspace, size, time taken, when."""
    rows = [
        {
            "Kind": record["kind"], "File or folder": record["path"],
            "Size": f"{record['bytes'] / 1e6:.1f} MB", "Took": f"{record['seconds']:.1f} s",
            "When": record["time"],
        }
        for record in exported
    ]  # fmt: skip
    return pd.DataFrame(rows).to_html(index=False, border=0)


def _forgetting_html(forgetting: dict[str, Any]) -> str:
    summary = pd.DataFrame(
        {
            "general-text perplexity": forgetting["perplexity"],
            f"general questions right (of {forgetting['total']})": forgetting["correct"],
        }
    ).rename(index=TITLES)
    answers = pd.DataFrame(forgetting["questions"])[["question", "base", "fine_tuned"]]
    return summary.to_html(float_format="%.2f", border=0) + answers.to_html(index=False, border=0)


def _score_chart(report: dict[str, Any]) -> Any:
    from matplotlib.figure import Figure

    metrics = [m for m in report["metrics"] if m != "perplexity"]
    frame = scores_frame(report)[metrics].T
    figure = Figure(figsize=(6, 3.4))
    axes = figure.subplots()
    frame.plot.bar(ax=axes, rot=0, ylim=(0, 1), title="Task scores (higher is better)")
    return figure


def _curve_chart(run: RunDir) -> Any:
    from matplotlib.figure import Figure

    metrics = run.read_metrics()
    figure = Figure(figsize=(6, 3.4))
    axes = figure.subplots()
    for key, label in (("loss", "training loss"), ("eval_loss", "eval loss")):
        points = [(m["step"], m[key]) for m in metrics if key in m]
        if points:
            axes.plot(*zip(*points, strict=True), marker="." if key == "eval_loss" else "",
                      label=label)  # fmt: skip
    axes.set(title="Training curves", xlabel="step", ylabel="loss")
    axes.legend()
    return figure


def _svg(figure: Any) -> str:
    import matplotlib

    buffer = io.StringIO()
    figure.tight_layout()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text: small, no glyph ids
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _e(text: Any) -> str:
    return html.escape(str(text))
