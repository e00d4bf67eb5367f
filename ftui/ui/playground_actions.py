"""The Playground tab's server-side actions: check the input, call ftui.evaluate / ftui.export,
shape the results for the widgets. Bad input raises gr.Error with a plain message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ftui.config import ConfigError, FtuiConfig, config_from_dotted
from ftui.evaluate.cache import ComparisonCache
from ftui.evaluate.compare import (
    TITLES,
    VARIANTS,
    GenerationError,
    prompt_from_text,
    shot_from_pair,
)
from ftui.runs.jobs import JobError, Jobs
from ftui.runs.rundir import RunDir
from ftui.server.auth import NAME_PATTERN, Access, PermissionDenied, User
from ftui.server.hub_auth import push_token
from ftui.server.settings import ServerSettings
from ftui.workspace import PathOutsideWorkspace, Workspace

CASES_SHOWN = 3
DEMO_NO_EXPORT = (
    "This public demo keeps every model on the server: merging and pushing to the Hub are "
    "switched off here, and so is GGUF export. To export a fine-tuned model, run ftui on your "
    "own machine (`make run` in its repository) or duplicate this Space with FTUI_DEMO off."
)
NO_TOKEN = (
    "Paste a Hugging Face token with write access into the Hub token box "
    "(https://huggingface.co/settings/tokens). It is used for this one push, never stored "
    "or logged; this server does not push with its own token."
)
NO_TOKEN_HF = (
    "Log in with Hugging Face (with permission to write repos), or paste a token with write "
    "access into the Hub token box. It is used for this one push, never stored or logged."
)
NO_RUN = (
    "No fine-tuned run yet: train one in the Train tab (or try the guided run at the top), "
    "then pick it here."
)


def finished_runs(jobs: Jobs) -> list[tuple[str, str]]:
    """(label, id) of every run that saved an adapter or model, newest first."""
    choices = []
    for row in jobs.list():
        if jobs.run_dir(row["id"]).output is not None:
            loss = f", eval loss {row['eval_loss']:.3f}" if row["eval_loss"] is not None else ""
            choices.append((f"{row['id']} ({row['method']}, {row['state']}{loss})", row["id"]))
    return choices


def newest_finished_run(jobs: Jobs) -> str | None:
    """The run the Playground opens with: the newest completed one, else the newest saved."""
    rows = [row for row in jobs.list() if jobs.run_dir(row["id"]).output is not None]
    completed = [row for row in rows if row["state"] == "completed"]
    return next((row["id"] for row in completed or rows), None)


def compare_readiness(run_id: str | None, prompt: str | None) -> tuple[bool, str]:
    """Whether Compare can answer now, and if not, what to do first (beside the button)."""
    if not run_id or not (prompt or "").strip():
        return False, NO_RUN if not run_id else "Type a prompt to compare."
    return True, ""


def run_dir(jobs: Jobs, run_id: str | None) -> RunDir:
    if not run_id:
        raise gr.Error(NO_RUN)
    try:
        jobs.get(run_id)
    except JobError as exc:
        raise gr.Error(str(exc)) from None
    run = jobs.run_dir(run_id)
    if run.output is None:
        raise gr.Error(f"Run {run_id} has saved no adapter or model yet.")
    return run


def require_owner(
    jobs: Jobs, settings: ServerSettings, request: Any, run_id: str, out: str, action: str
) -> Path:
    """May this caller merge or push this run into (from) `out`? Returns the export folder;
    raises gr.Error saying why not.

    Demo mode: never (nothing leaves a public demo). Where runs have owners: only the run's
    owner or an admin, and only inside their own exports/<name>/ (an admin: anywhere in
    exports/), so nobody overwrites or publishes another person's export or upload.
    Local mode: the one user, anywhere in the workspace."""
    workspace, access = settings.workspace, settings.access
    if is_demo(settings):
        raise gr.Error(DEMO_NO_EXPORT)
    if not access.checks_owners:
        return _export_folder(workspace, out, run_id)
    if not run_id:
        raise gr.Error(f"Choose the fine-tuned run to {action} first.")
    try:
        owner = jobs.get(run_id)["owner"]
        user = access.require_owner(request, owner, action, run_id)
    except (JobError, PermissionDenied) as exc:
        raise gr.Error(str(exc)) from None
    folder = _export_folder(workspace, out, run_id)
    allowed = own_exports(workspace, user)
    if allowed not in folder.parents:
        where = "exports/" if user.is_admin else f"exports/{user.name}/"
        raise gr.Error(
            f"{out}: exports go inside {where} on this server (e.g. {where}my-model), so "
            "nobody overwrites another person's files."
        )
    return folder


def is_demo(settings: ServerSettings) -> bool:
    """A public demo: demo limits on (FTUI_DEMO=1, read once at start), or logins in demo mode."""
    return settings.access.mode == "demo" or settings.demo.enabled


def own_exports(workspace: Workspace, user: User) -> Path:
    """The folder a user's exports go in: exports/<name>/ (an admin's: all of exports/)."""
    exports = workspace.root / "exports"
    if user.is_admin:
        return exports
    if not NAME_PATTERN.match(user.name):  # a name that could not be a folder of its own
        raise gr.Error(f"The user name {user.name!r} cannot name an export folder.")
    return exports / user.name


def default_export_folder(settings: ServerSettings, request: Any) -> str:
    """What the folder box starts with: exports/<you>/ where runs have owners."""
    access = settings.access
    user = access.user(request) if access.checks_owners and not is_demo(settings) else None
    return f"exports/{user.name}/" if user and NAME_PATTERN.match(user.name) else "exports/"


def caller_push_token(access: Access, typed: str | None, oauth: Any) -> str:
    """The caller's own token for a push: typed, or their HF login's in hf mode; never the
    server's unless an admin opted in (ftui.server.hub_auth). Raises gr.Error when there is none."""
    own = getattr(oauth, "token", None) if access.mode == "hf" else None
    token = push_token(typed, own)
    if not token:
        raise gr.Error(NO_TOKEN_HF if access.mode == "hf" else NO_TOKEN)
    return token


def run_defaults(jobs: Jobs, run_id: str | None) -> tuple[Any, ...]:
    """A validation question as the prompt, the run's few-shot examples, its eval settings."""
    from ftui.data.training_data import load_training_rows

    if not run_id:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    config = run_dir(jobs, run_id).read_config()
    try:
        train, validation = load_training_rows(config.data, config.method.objective)
    except Exception as exc:  # the data may have moved since training; the run still works
        gr.Warning(f"Could not read the run's data for examples: {exc}")
        return "", pd.DataFrame(columns=["question", "answer"]), gr.skip(), gr.skip()
    question = _user_text(validation[0]["prompt"]) if validation else ""
    k = config.eval.few_shot_k if config.method.objective == "instruction" else 0
    shots = pd.DataFrame(
        [
            {"question": _user_text(row["prompt"]), "answer": row["completion"][-1]["content"]}
            for row in train[:k]
        ],
        columns=["question", "answer"],
    )
    return question, shots, config.eval.max_new_tokens, min(config.eval.limit, len(validation))


def stream_three(
    jobs: Jobs, cache: ComparisonCache, run_id: str, text: str, shot_rows: Any,
    tokens: int, temperature: float, top_p: float,
) -> Iterator[tuple[str, ...]]:  # fmt: skip
    """Stream base, few-shot and fine-tuned together (one batch where the model allows);
    yield all six widget values each time."""
    from ftui.evaluate.side_by_side import stream_variants

    if not text or not text.strip():
        raise gr.Error("Type a prompt to compare.")
    run = run_dir(jobs, run_id)
    tokens = eval_setting(run.read_config(), "max_new_tokens", tokens)  # before loading
    compare = _comparison(cache, run)
    prompt = prompt_from_text(compare.config, text.strip())
    shots = _shots(shot_rows)
    chats = {variant: compare.chat(prompt, variant, shots) for variant in VARIANTS}
    note = f" — {compare.note}" if compare.note else ""  # e.g. moved to the CPU
    try:
        for answers, done in stream_variants(compare, chats, tokens, temperature, top_p):
            texts = [answers[variant].text for variant in VARIANTS]
            stats = [
                _answer_stats(answers[variant], note) if variant in done else "_answering..._"
                for variant in VARIANTS
            ]
            yield (*texts, *stats)
    except GenerationError as exc:
        raise gr.Error(str(exc)) from None


def _answer_stats(answer: Any, note: str) -> str:
    return (
        f"{answer.seconds:.2f} s, {answer.new_tokens} tokens, "
        f"{answer.tokens_per_second:.1f} tokens/s{note}"
    )


def eval_setting(config: FtuiConfig, name: str, value: Any) -> Any:
    """A Playground value for the eval.<name> field, checked by the config like any other
    setting (type and range); a bad or empty one raises gr.Error naming the key."""
    try:
        return getattr(config_from_dotted({f"eval.{name}": value}, base=config).eval, name)
    except ConfigError as exc:
        raise gr.Error(str(exc)) from None


def _comparison(cache: ComparisonCache, run: RunDir) -> Any:
    from ftui.models import ModelLoadError

    try:
        return cache.get(run)
    except (ValueError, OSError, ModelLoadError) as exc:
        raise gr.Error(f"Could not load run {run.run_id}: {exc}") from None


def _shots(rows: Any) -> list[dict]:
    if rows is None:
        return []
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    pairs = []
    for record in frame.fillna("").to_dict("records"):
        question, answer = str(record.get("question", "")), str(record.get("answer", ""))
        if question.strip() and answer.strip():
            pairs.append(shot_from_pair(question.strip(), answer.strip()))
    return pairs


def _user_text(messages: list[dict[str, str]]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


# ---------------------------------------------------------------- batch evaluation


def evaluate(jobs: Jobs, run_id: str, count: Any, progress: Any) -> dict:
    """Score `count` validation rows (an eval.limit, checked by the config) of the run."""
    from ftui.evaluate.batch import evaluate_run

    run = run_dir(jobs, run_id)
    count = eval_setting(run.read_config(), "limit", count)
    try:
        return evaluate_run(run, limit=count, progress=lambda f, text: progress(f, desc=text))
    except ValueError as exc:
        raise gr.Error(str(exc)) from None


def report_views(report: dict) -> tuple[pd.DataFrame, pd.DataFrame, str, pd.DataFrame]:
    """(scores table, chart data, best/worst markdown, every example) for the widgets."""
    from ftui.evaluate.report import scores_frame

    table = scores_frame(report).round(3).reset_index(names="variant")
    return table, scores_chart_frame(report), _cases_markdown(report), examples_frame(report)


def scores_chart_frame(report: dict) -> pd.DataFrame:
    """Long format for the bar chart; perplexity is left out (unbounded, lower is better)."""
    rows = [
        {"bar": f"{m} · {TITLES[v]}", "variant": TITLES[v], "score": report["summary"][v][m]}
        for m in report["metrics"]
        if m != "perplexity"
        for v in VARIANTS
    ]
    return pd.DataFrame(rows)  # one bar per metric and variant, grouped by metric


def examples_frame(report: dict) -> pd.DataFrame:
    primary = report["primary"]
    rows = []
    for example in report["examples"]:
        # The instruction repeats on every row: show what follows it (the ticket itself).
        row = {"prompt": example["prompt"].split("\n\n")[-1], "reference": example["reference"]}
        for variant in VARIANTS:
            row[TITLES[variant]] = example[variant]
            row[f"{TITLES[variant]} {primary}"] = example[f"{variant}_scores"][primary]
        rows.append(row)
    return pd.DataFrame(rows)


def _cases_markdown(report: dict) -> str:
    primary = report["primary"]
    lines = []
    for title, indexes in (("Best", report["best"]), ("Worst", report["worst"])):
        lines.append(f"\n**{title} cases of the fine-tuned model** ({primary})\n")
        for index in indexes[:CASES_SHOWN]:
            example = report["examples"][index]
            score = example["fine_tuned_scores"][primary]
            lines.append(
                f"- `{_short(example['fine_tuned'])}` vs reference "
                f"`{_short(example['reference'])}` ({score:.2f})"
            )
    return "\n".join(lines)


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def report_page(jobs: Jobs, run_id: str, report: dict) -> str:
    from ftui.evaluate.report import report_html

    return report_html(run_dir(jobs, run_id), report)


# ---------------------------------------------------------------- forgetting and export


def forgetting_markdown(jobs: Jobs, cache: ComparisonCache, run_id: str) -> str:
    from ftui.evaluate.forgetting import forgetting_check

    try:
        check = forgetting_check(_comparison(cache, run_dir(jobs, run_id)))
    except GenerationError as exc:
        raise gr.Error(str(exc)) from None
    ppl, right, total = check["perplexity"], check["correct"], check["total"]
    lines = [
        "| | general-text perplexity (lower is better) | general questions right |",
        "|---|---|---|",
        f"| Base | {ppl['base']:.2f} | {right['base']} of {total} |",
        f"| Fine-tuned | {ppl['fine_tuned']:.2f} | {right['fine_tuned']} of {total} |",
    ]
    return "\n".join(lines)


def merge(jobs: Jobs, workspace: Workspace, run_id: str, out: str) -> str:
    from ftui.export import compare_latency, merge_run

    run = run_dir(jobs, run_id)
    folder = _export_folder(workspace, out, run_id)
    merge_run(run, folder)
    text = f"Saved the merged model to `{folder}` (safetensors, tokenizer, model card)."
    if run.output == run.adapter:
        timing = compare_latency(run, folder)
        text += (
            f"\n\nLatency per generated token: "
            f"{timing['unmerged_seconds_per_token'] * 1000:.1f} ms base + adapter, "
            f"{timing['merged_seconds_per_token'] * 1000:.1f} ms merged."
        )
    return text


def push(jobs: Jobs, workspace: Workspace, run_id: str, out: str, repo_id: str, token: str) -> str:
    """Upload the merged folder with the caller's token (see caller_push_token)."""
    from ftui.export import push_to_hub

    if not repo_id or "/" not in repo_id:
        raise gr.Error("Give the Hub repo as owner/name.")
    folder = _export_folder(workspace, out, run_id)
    if not (folder / "config.json").is_file():
        raise gr.Error("Merge and save first: the push uploads the merged folder.")
    try:
        url = push_to_hub(folder, repo_id, token)
    except (ValueError, RuntimeError) as exc:
        raise gr.Error(str(exc)) from None
    return f"Pushed to {url}"


def export_gguf(
    jobs: Jobs, settings: ServerSettings, request: Any, run_id: str, out: str, format: str,
    progress: Any,
) -> str:  # fmt: skip
    """Write the run as one GGUF file + Ollama Modelfile, if this caller may export into
    `out` (require_owner: the same rules as a merge); say where, how big, how long."""
    from ftui.gguf_export import describe_export
    from ftui.gguf_export import export_gguf as write_gguf_export

    folder = require_owner(jobs, settings, request, run_id, out, "export")
    run = run_dir(jobs, run_id)
    try:
        record = write_gguf_export(run, folder, format, lambda f, text: progress(f, desc=text))
    except ValueError as exc:  # GgufUnsupported included: what ftui can convert instead
        raise gr.Error(str(exc)) from None
    return describe_export(record)


def _export_folder(workspace: Workspace, out: str, run_id: str | None) -> Path:
    name = (out or "exports/").strip()
    if name.endswith("/"):
        if not run_id:
            raise gr.Error("Choose a fine-tuned run, or name the folder (exports/my-model).")
        name += run_id
    try:
        return workspace.resolve(name)
    except PathOutsideWorkspace as exc:
        raise gr.Error(str(exc)) from None
