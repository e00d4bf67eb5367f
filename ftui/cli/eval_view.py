"""`ftui eval`'s report as text: one row per variant, one column per metric."""

from __future__ import annotations

from typing import Any

from ftui.evaluate.compare import TITLES


def render_summary(report: dict[str, Any]) -> str:
    metrics = report["metrics"]
    lines = [
        f"run {report['run']}: {report['examples_scored']} validation examples, "
        f"{report['kind']} task, primary metric {report['primary']}",
        f"{'':12}" + "".join(f"{name:>16}" for name in metrics),
    ]
    for variant, scores in report["summary"].items():
        cells = "".join(f"{scores[name]:>16.3f}" for name in metrics)
        lines.append(f"{TITLES[variant]:12}{cells}")
    return "\n".join(lines)
