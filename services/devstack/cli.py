"""`gridlease dev up|down|status|demo|logs`: the whole stack on this machine."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def _stack(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from services.devstack.stack import Stack

    return Stack()


def cmd_up(args: argparse.Namespace) -> int:
    from services.devstack.demo import run_demo

    stack = _stack(args)
    try:
        stack.up()
    except (RuntimeError, TimeoutError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.no_demo:
        return 0
    run_demo(stack.api_url, stack.chain_url, stack.root)
    print("\nthe stack keeps running: gridlease dev demo | gridlease offers | gridlease dev down")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from services.devstack.demo import run_demo

    stack = _stack(args)
    if not stack.running():
        print("error: the dev stack is not up (gridlease dev up)", file=sys.stderr)
        return 1
    run_demo(stack.api_url, stack.chain_url, stack.root)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = _stack(args).down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    stack = _stack(args)
    status = stack.status()
    if not status:
        print("the dev stack is not up")
        return 1
    for name, alive in status.items():
        print(f"  {name:<8} {'running' if alive else 'STOPPED'}")
    for name, where in stack.state.info().items():
        print(f"  {name:<8} {where}")
    return 0 if all(status.values()) else 1


def cmd_logs(args: argparse.Namespace) -> int:
    print(_stack(args).state.logs)
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dev = commands.add_parser("dev", help="the whole stack on this machine")
    sub = dev.add_subparsers(dest="dev_command", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="set up what is missing, start everything, run the demo")
    up.add_argument("--no-demo", action="store_true", help="start the stack only")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop everything").set_defaults(func=cmd_down)
    sub.add_parser("status", help="what runs and where").set_defaults(func=cmd_status)
    sub.add_parser("demo", help="lease 2 GPUs end to end").set_defaults(func=cmd_demo)
    sub.add_parser("logs", help="print the log folder").set_defaults(func=cmd_logs)
