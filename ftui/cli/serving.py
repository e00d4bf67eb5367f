"""`ftui serve` (the web app) and `ftui users` (who may log in to it in team mode)."""

from __future__ import annotations

import argparse
import sys

from ftui.cli.exits import EXIT_OK, refuse

AUTH_FILE_HELP = "the users file (default WORKSPACE/.private/users.json)"


def add_serve_parser(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the web app",
        description="Modes: local (no users file), users (a users file), hf (FTUI_AUTH=hf on a "
        "Space with hf_oauth), demo (FTUI_DEMO=1). See the README's security section.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1",
        help="address to bind; a network address without logins is warned about",
    )  # fmt: skip
    serve.add_argument("--port", type=int, default=7860, help="port to listen on")
    serve.add_argument(
        "--workspace", default=None, metavar="DIR", help="folder for uploads and runs"
    )
    serve.add_argument(
        "--auth-file", default=None, metavar="FILE",
        help="users file for team mode (default WORKSPACE/.private/users.json when it exists)",
    )  # fmt: skip
    serve.set_defaults(handler=serve_app)


def add_users_parser(commands) -> None:
    users = commands.add_parser("users", help="team mode: who may log in").add_subparsers(
        metavar="ACTION"
    )
    add = users.add_parser("add", help="add a user, or set their password and role")
    add.add_argument("name", help="the login name")
    add.add_argument("--admin", action="store_true", help="may cancel or delete anyone's run")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    remove = users.add_parser("remove", help="remove a user (their sessions end at once)")
    remove.add_argument("name", help="the login name")
    listing = users.add_parser("list", help="list users and roles")
    for action, command in ((add, "add"), (remove, "remove"), (listing, "list")):
        action.add_argument("--workspace", default=None, metavar="DIR", help="the workspace folder")
        action.add_argument("--auth-file", default=None, metavar="FILE", help=AUTH_FILE_HELP)
        action.set_defaults(handler=edit_users, action=command)


def serve_app(args: argparse.Namespace) -> int:
    from ftui.config import ConfigError
    from ftui.server.auth import AuthError
    from ftui.server.serve import serve

    try:
        serve(args.host, args.port, workspace_dir=args.workspace, auth_file=args.auth_file)
    except (AuthError, ConfigError) as exc:  # a wrong login setup or a malformed FTUI_DEMO_*
        return refuse(exc)
    return EXIT_OK


def edit_users(args: argparse.Namespace) -> int:
    from ftui.server.auth import AuthError, UserFile, users_file_path
    from ftui.workspace import Workspace

    users = UserFile(users_file_path(Workspace.open(args.workspace).root, args.auth_file))
    try:
        if args.action == "list":
            for user in users.users():
                print(f"{user.name}\t{user.role}")
            return EXIT_OK
        if args.action == "remove":
            users.remove(args.name)
            print(f"removed {args.name} from {users.path}")
            return EXIT_OK
        password = _read_password(args)
        if password is None:
            return refuse("the passwords differ")
        users.add(args.name, password, "admin" if args.admin else "user")
    except AuthError as exc:
        return refuse(exc)
    role = "admin" if args.admin else "user"
    print(f"{args.name} ({role}) saved in {users.path}; `ftui serve` now asks for a login")
    return EXIT_OK


def _read_password(args: argparse.Namespace) -> str | None:
    """From stdin (--password-stdin), or typed twice; None when the two differ."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass(f"password for {args.name}: ")
    return password if getpass.getpass("again: ") == password else None
