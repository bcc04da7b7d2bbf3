"""`python -m devstack {fetch|up|infra|down|status|provision|env|keys}`: run the local stack."""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from devstack import jars, objectstore
from devstack.errors import StackError
from devstack.stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "fetch", help="resolve and cache the Kafka and DynamoDB Local jars; build SeaweedFS"
    )
    commands.add_parser("up", help="start Kafka, DynamoDB Local and the services; provision")
    commands.add_parser("infra", help="start Kafka and DynamoDB Local and provision, no services")
    commands.add_parser("down", help="stop everything this stack started")
    commands.add_parser("status", help="show what runs")
    commands.add_parser("provision", help="create missing topics and tables")
    commands.add_parser("env", help="print the environment that points a shell at this stack")
    commands.add_parser("keys", help="make the development signing keys (publishers, IdP)")
    args = parser.parse_args(argv)
    stack = Stack()
    started = time.monotonic()
    try:
        if args.command == "fetch":
            for profile in ("kafka", "dynamodb"):
                print(f"{profile}: {jars.resolve(profile)}")
            print(f"objectstore: {objectstore.build()}")
        elif args.command in {"up", "infra"}:
            _bring_up(stack, with_services=args.command == "up")
            print(f"ready in {time.monotonic() - started:.1f}s")
        elif args.command == "down":
            stopped = stack.down()
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        elif args.command == "status":
            _print_status(stack)
        elif args.command == "provision":
            topics, tables = stack.provision()
            print(f"topics created: {list(topics.created)}; tables created: {list(tables.created)}")
        elif args.command == "keys":
            keys = stack.keys.ensure()
            print(
                f"development keys in {keys.root}: "
                + ", ".join(sorted(p.name for p in keys.root.glob("*.jwk")))
            )
        elif args.command == "env":
            print("\n".join(export_lines(stack.environment())))
    except StackError as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 1
    return 0


def _bring_up(stack: Stack, *, with_services: bool) -> None:
    stack.start_infrastructure()
    topics, tables = stack.provision()
    print(f"topics created: {len(topics.created)}, already there: {len(topics.existing)}")
    for problem in topics.mismatched:
        print(f"WARNING {problem}")
    print(f"tables created: {len(tables.created)}, already there: {len(tables.existing)}")
    if stack.secured:
        print(f"Kafka clients (SASL_SSL): {stack.root / 'clients'}/<principal>.properties")
    if with_services:
        stack.start_services()
    _print_status(stack)


def _print_status(stack: Stack) -> None:
    for name, state in stack.status().items():
        print(f"  {name:<11} {state}")


def export_lines(environment: dict[str, str]) -> list[str]:
    """`export` lines a shell evaluates back to exactly these values (JSON key sets included).
    The taxpayer_ref key is intake's and the read side's alone; the key-encryption key is
    printed: the local operator opens sealed dead letters with it (`cafctl dlq show`)."""
    return [
        f"export {key}={shlex.quote(value)}"
        for key, value in environment.items()
        if not key.endswith("_TAXPAYER_REF_KEY")
    ]


if __name__ == "__main__":
    sys.exit(main())
