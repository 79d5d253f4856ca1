"""``hive token create|list|revoke``: access tokens, stored hashed beside the log."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("token", help="create, list or revoke access tokens (stored hashed beside the log)")
    tsub = p.add_subparsers(dest="token_command", required=True)
    c = tsub.add_parser("create", help="create a token and print it once")
    c.add_argument("--role", required=True, choices=["viewer", "operator", "admin", "agent"])
    c.add_argument("--agent", help="the agent id an agent token is bound to")
    c.add_argument("--note", help="what the token is for")
    r = tsub.add_parser("revoke", help="revoke a token (by the token or its id)")
    r.add_argument("token")
    tsub.add_parser("list", help="list tokens (ids and roles, never secrets)")
    for x in (c, r, tsub.choices["list"]):
        # the same database, by the same default and the same HIVE_DB, as `hive serve`
        x.add_argument(
            "--db",
            default=os.environ.get("HIVE_DB") or "./data/hive.db",
            help="the hub's database, as given to hive serve (env HIVE_DB, default %(default)s)",
        )
        x.add_argument(
            "--namespace",
            metavar="NAME",
            help="the tokens of namespace NAME (hive serve --namespace NAME) instead of the default's",
        )
    p.set_defaults(func=cmd_token)


def cmd_token(args: argparse.Namespace) -> int:
    from ..server.auth import TokenStore
    from ..server.namespaces import derive_db

    if args.namespace:
        try:
            args.db = derive_db(args.db, args.namespace)
        except ValueError as exc:
            print(f"error: --namespace: {exc}", file=sys.stderr)
            return 2
    store = TokenStore(args.db)
    if args.token_command == "create":
        try:
            token, tid = store.create(args.role, args.agent, args.note)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(token)
        print(f"(id {tid}, role {args.role}; shown once, stored hashed in {args.db})", file=sys.stderr)
        print(
            "authentication is now on for the hub on this database (with the default --auth auto):"
            " every request needs a token, as the header 'Authorization: Bearer <token>'"
            " or --token / HIVE_TOKEN for the hive commands",
            file=sys.stderr,
        )
        return 0
    if args.token_command == "revoke":
        if not store.revoke(args.token):
            print("error: no such active token", file=sys.stderr)
            return 2
        print("revoked")
        return 0
    for t in store.list():
        state = "revoked" if t["revoked_at"] else "active"
        print(f"{t['id']}  {t['role']:<8} {t['agent_id'] or '-':<36} {state:<8} {t['note'] or ''}")
    return 0
