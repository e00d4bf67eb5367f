"""The Gradio app: a header with the model choice, then one tab per step of the user's path.

`build_app` only lays out and wires; each tab lives in its own module. State chosen in one
tab (dataset, model, method settings) reaches the next through shared components. Above the
tabs, the guided first run (`ftui.ui.guided_run`) walks all four with the flagship preset.
Building the app re-attaches to the job queue: runs that outlived the last server keep being
watched, dead ones are marked failed and queued ones start.
"""

from __future__ import annotations

import html

import gradio as gr

from ftui.runs.jobs import Jobs
from ftui.server.auth import Access
from ftui.server.settings import ServerSettings
from ftui.ui.data_tab import build_data_tab
from ftui.ui.guided_run import GuidedTargets, guided_panel, wire_guided_run
from ftui.ui.method_tab import build_method_tab
from ftui.ui.playground_tab import build_playground_tab
from ftui.ui.train_tab import build_train_tab
from ftui.ui.widgets import config_widget


def build_app(settings: ServerSettings) -> gr.Blocks:
    jobs = Jobs(settings.workspace)
    jobs.refresh()
    with gr.Blocks(title="ftui — fine-tune open LLMs") as app:
        if demo_banner := settings.demo.banner():  # FTUI_DEMO: a public Space's caps
            gr.Markdown(demo_banner, elem_id="demo-banner")
        gr.Markdown("# ftui")
        if settings.exposed_warning:  # local mode on a network address, without logins
            gr.Markdown(f"**Warning:** {settings.exposed_warning}", elem_id="exposed-warning")
        if settings.access.checks_owners:
            _who_is_logged_in(settings.access)
        guided = guided_panel()  # what ftui does, and a button that shows it
        model_box = config_widget("model.name_or_path", elem_id="model-box")
        with gr.Tabs() as tabs:
            with gr.Tab("Data", id="data"):
                data_tab = build_data_tab(settings, model_box)
            with gr.Tab("Method", id="method"):
                method_tab = build_method_tab(data_tab.dataset, model_box)
            with gr.Tab("Train", id="train"):
                train_tab = build_train_tab(settings, jobs, data_tab.dataset, method_tab.settings)
            with gr.Tab("Playground", id="playground"):
                playground_tab = build_playground_tab(settings, jobs)
        targets = GuidedTargets(tabs, method_tab.settings, train_tab, playground_tab)
        wire_guided_run(app, guided, targets, settings, jobs)
    return app


def _who_is_logged_in(access: Access) -> None:
    """The header line of team and demo modes: who the caller is, their role, the way out."""
    with gr.Row():
        who = gr.HTML("", elem_id="whoami")
        if access.mode == "hf":
            gr.LoginButton()  # also makes gradio add its HF OAuth routes

    def show(request: gr.Request) -> str:
        user = access.user(request)
        if user is None:
            return "Not logged in."
        if access.mode == "demo":
            return (
                f"You are <b>{html.escape(user.name)}</b> (kept by a cookie in this browser): "
                "you may cancel or delete only the runs you started."
            )
        role = " (admin: may cancel or delete anyone's run)" if user.is_admin else ""
        logout = "" if access.mode == "hf" else LOGOUT_FORM  # hf: the LoginButton logs out
        return f"Logged in as <b>{html.escape(user.name)}</b>{role}{logout}"

    gr.on(None, show, None, who, api_visibility="private", show_progress="hidden")


# A POST, so that no link or image on any page can log anyone out (the server checks Origin).
LOGOUT_FORM = (
    ' <form method="post" action="/logout" target="_self" style="display:inline">'
    '<button type="submit" id="logout-button">Log out</button></form>'
)
