"""The web server: settings made once (settings), who may do what (auth, sessions, hub_auth,
demo), the login pages and request guards (web_*), and the launcher (serve)."""
