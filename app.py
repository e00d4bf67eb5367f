"""Run the ftui web app: `python app.py` (same as `ftui serve`; honours $FTUI_WORKSPACE, $PORT)."""

import os

from ftui.server.serve import serve

if __name__ == "__main__":
    serve(
        host=os.environ.get("FTUI_HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "7860")),
    )
