"""VICI verbs that act: up/down (initiate/terminate), rekey, log levels, following events."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from ..control.client import ViciClient, ViciEventUnknown
from .common import connect, finish, plain
from .errors import EXIT_FAILED, EXIT_OK

FOLLOWED_EVENTS = ("log", "ike-updown", "child-updown", "ike-rekey", "child-rekey")


def _print_control_log(events: list[Mapping[str, Any]]) -> None:
    for event in events:
        msg = event.get("msg")
        if msg is not None:
            group = str(event.get("group", "")).upper()
            print(f"[{group}] {plain(msg)}" if group else str(plain(msg)), flush=True)


def _streamed(client: ViciClient, command: str, message: dict[str, Any]) -> Mapping[str, Any]:
    """Run ``command`` with its ``control-log`` lines printed (when the daemon sends them)."""
    try:
        _events, reply = client.streamed(
            command, "control-log", message, lambda event: _print_control_log([event])
        )
    except ViciEventUnknown:
        return client.request(command, message)
    return reply


def initiate(args: argparse.Namespace) -> int:
    with connect(args) as client:
        message: dict[str, Any] = {"child": args.child} if args.child else {"ike": args.ike}
        message["timeout"] = str(int(args.timeout * 1000))
        reply = _streamed(client, "initiate", message)
    return finish("initiate", reply, "initiate completed successfully")


def _children_of(client: ViciClient, name: str) -> tuple[str | None, list[str]]:
    """(connection, its children) when ``name`` is a connection, else (None, [name]) when it
    is a child of one; (None, []) when neither."""
    children_of: dict[str, list[str]] = {}
    events, _ = client.streamed("list-conns", "list-conn", {})
    for event in events:
        for conn, info in event.items():
            children = info.get("children", {}) if isinstance(info, Mapping) else {}
            children_of[str(conn)] = [str(c) for c in children]
    if name in children_of:
        return name, children_of[name]
    if any(name in children for children in children_of.values()):
        return None, [name]
    return None, []


def up(args: argparse.Namespace) -> int:
    """``petrel up NAME``: every child of connection NAME, or child NAME (VICI initiate)."""
    with connect(args) as client:
        conn, children = _children_of(client, args.name)
        if not children and conn is None:
            print(f"up failed: no connection or child named {args.name!r}", file=sys.stderr)
            return EXIT_FAILED
        status = EXIT_OK
        targets: list[dict[str, Any]] = [{"ike": conn}] if conn is not None and not children else []
        targets += [{"child": c, **({"ike": conn} if conn else {})} for c in children]
        for target in targets:
            target["timeout"] = str(int(args.timeout * 1000))
            reply = _streamed(client, "initiate", target)
            what = target.get("child") or target.get("ike")
            if finish("up", reply, f"{what}: up") != EXIT_OK:
                status = EXIT_FAILED
    return status


def down(args: argparse.Namespace) -> int:
    """``petrel down NAME``: the IKE SAs of connection NAME, or the Child SAs of child NAME."""
    with connect(args) as client:
        conn, children = _children_of(client, args.name)
        if conn is None and not children:
            print(f"down failed: no connection or child named {args.name!r}", file=sys.stderr)
            return EXIT_FAILED
        message: dict[str, Any] = {"ike": conn} if conn else {"child": args.name}
        message["timeout"] = str(int(args.timeout * 1000))
        reply = _streamed(client, "terminate", message)
    kind = "IKE" if conn else "Child"
    return finish("down", reply, f"{args.name}: down ({reply.get('terminated', 0)} {kind} SA(s))")


def terminate(args: argparse.Namespace) -> int:
    message: dict[str, str] = {}
    for key in ("ike", "child", "ike_id"):
        value = getattr(args, key)
        if value:
            message[key.replace("_", "-")] = str(value)
    # The daemon answers within the timeout (as charon: without one it waits for the peer).
    message["timeout"] = str(int(args.timeout * 1000))
    with connect(args) as client:
        reply = _streamed(client, "terminate", message)
    done = f"terminated {reply.get('terminated', 0)} {'Child' if args.child else 'IKE'} SA(s)"
    return finish("terminate", reply, done)


def rekey(args: argparse.Namespace) -> int:
    message: dict[str, str] = {}
    for key in ("ike", "child", "ike_id", "child_id"):
        value = getattr(args, key)
        if value:
            message[key.replace("_", "-")] = str(value)
    if args.reauth:
        message["reauth"] = "yes"
    with connect(args) as client:
        reply = client.request("rekey", message)
    return finish("rekey", reply, f"rekeying {reply.get('matches')} SA(s)")


def loglevel(args: argparse.Namespace) -> int:
    """``petrel loglevel ike=2,net=1``: VICI reload-settings with Petrel's ``log`` key."""
    with connect(args) as client:
        reply = client.request("reload-settings", {"log": args.spec})
    return finish("loglevel", reply, f"log levels set: {args.spec}")


def follow(args: argparse.Namespace) -> int:
    """``petrel log``: print log lines and SA events as they come, until Ctrl-C."""
    client = connect(args, timeout=None)
    registered = []
    for event in FOLLOWED_EVENTS:
        try:
            client.register(event)
            registered.append(event)
        except ViciEventUnknown:
            continue
    if not registered:
        print("log failed: the daemon offers none of the followed events", file=sys.stderr)
        return EXIT_FAILED
    try:
        while True:
            name, message = client.next_event()
            if args.json:
                print(json.dumps({"event": name, **plain(message)}), flush=True)
            else:
                print(_event_line(name, message), flush=True)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        client.close()


def _event_line(name: str, message: Mapping[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S")
    if name == "log":
        sa = ""
        if message.get("ikesa-name"):
            sa = f" <{plain(message['ikesa-name'])}|{plain(message.get('ikesa-uniqueid', '?'))}>"
        group = str(plain(message.get("group", ""))).upper()
        return f"{stamp} [{group}]{sa} {plain(message.get('msg', ''))}"
    state = "up" if str(plain(message.get("up", "no"))) == "yes" else "down"
    names = [
        f"{k}#{plain(v.get('uniqueid', '?'))}" for k, v in message.items() if isinstance(v, Mapping)
    ]
    return f"{stamp} {name} {state}: {', '.join(names)}"
