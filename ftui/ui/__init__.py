"""The browser UI, in Gradio. Per tab: a builder (`*_tab.py`), its layout pieces
(`*_layout.py`) and wiring, and its presenters — plain functions, no Gradio, that turn results
into what the tab's widgets show (`method_view`, `catalog_view`, `run_config`, `runs_view`,
`runs_history`, `playground_actions`). Every settings widget is built by `widgets.py` from its
config field. The CLI's presenters live likewise beside it, in `ftui/cli/`."""
