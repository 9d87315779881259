"""petrel: the daemon, a VICI client for controlling it, the capture decoder and the demo.

Exit status, for scripts: 0 done; 1 the command failed (the daemon answered success = no,
a configuration file is invalid); 2 the command line is wrong (and petrel daemon with a bad
configuration); 3 no daemon answers on the control socket; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import listings, load, verbs
from .daemon_cmd import add_parser as _add_daemon_parser
from .daemon_cmd import run_daemon
from .errors import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    DaemonUnreachable,
    UsageError,
    _user_errors,
    describe_error,
)
from .listings import format_ike_sa

__all__ = ["build_parser", "describe_error", "format_ike_sa", "main"]

PLAIN_SOCKET = "/run/petrel.vici"
SERVICE_SOCKET = "/run/petrel/petrel.vici"  # packaging/systemd/petrel.service's RuntimeDirectory


def _default_socket() -> str:
    """``$PETREL_VICI``, else /run/petrel.vici, else the service's socket when only it exists."""
    if os.environ.get("PETREL_VICI"):
        return os.environ["PETREL_VICI"]
    if not os.path.exists(PLAIN_SOCKET) and os.path.exists(SERVICE_SOCKET):
        return SERVICE_SOCKET
    return PLAIN_SOCKET


DEFAULT_SOCKET = _default_socket()

# Dispatch goes through these module-level names (tests replace them).
_cmd_daemon = run_daemon
_cmd_initiate = verbs.initiate
_cmd_terminate = verbs.terminate
_cmd_rekey = verbs.rekey
_cmd_up = verbs.up
_cmd_down = verbs.down
_cmd_log = verbs.follow
_cmd_loglevel = verbs.loglevel
_cmd_stats = listings.stats
_cmd_status = listings.status
_cmd_list_sas = listings.list_sas
_cmd_list_conns = listings.list_conns
_cmd_list_certs = listings.list_certs
_cmd_list_pools = listings.list_pools
_cmd_load = load.load
_cmd_config_check = load.check


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import main as demo_main

    return demo_main(args)


def _dispatch(name: str):  # type: ignore[no-untyped-def]
    """The handler named ``name``, looked up when the command runs."""
    return lambda args: globals()[name](args)


def _json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"JSON lines: {what}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="petrel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--socket",
        default=DEFAULT_SOCKET,
        help=f"VICI control socket (default {DEFAULT_SOCKET}, env PETREL_VICI)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the Python traceback of an error instead of one line (env PETREL_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_daemon_parser(sub).set_defaults(func=_dispatch("_cmd_daemon"))

    load_p = sub.add_parser("load", help="load swanctl.conf into the daemon (swanctl --load-all)")
    load_p.add_argument(
        "path", nargs="?", help=f"swanctl.conf or its folder ({load.DEFAULT_CONFIG})"
    )
    load_p.set_defaults(func=_dispatch("_cmd_load"))

    config = sub.add_parser("config", help="configuration tools (no daemon needed)")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="read and validate swanctl.conf (exit 1 if bad)")
    check.add_argument("path", help="swanctl.conf or its folder")
    _json_flag(check, "the summary or the error with file and line")
    check.set_defaults(func=_dispatch("_cmd_config_check"))

    for verb, text in (
        ("up", "bring up a connection (each of its children) or one child"),
        ("down", "delete a connection's IKE SAs (or those carrying a child) with the peer"),
    ):
        p = sub.add_parser(verb, help=text)
        p.add_argument("name", help="connection or child name")
        p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
        p.set_defaults(func=_dispatch(f"_cmd_{verb}"))

    status = sub.add_parser("status", help="daemon, connections and SAs at a glance")
    _json_flag(status, "one object with version, stats, connection names and SAs")
    status.set_defaults(func=_dispatch("_cmd_status"))

    list_sas = sub.add_parser("list-sas", help="list IKE and Child SAs")
    _json_flag(list_sas, "one object per IKE SA (VICI list-sa)")
    list_sas.add_argument("--long", action="store_true", help="swanctl --list-sas style text")
    list_sas.add_argument("--ike", help="only this connection's SAs")
    list_sas.set_defaults(func=_dispatch("_cmd_list_sas"))

    list_conns = sub.add_parser("list-conns", help="list loaded connections")
    _json_flag(list_conns, "one object per connection (VICI list-conn)")
    list_conns.set_defaults(func=_dispatch("_cmd_list_conns"))

    list_certs = sub.add_parser("list-certs", help="list certificates, CRLs and raw keys")
    _json_flag(list_certs, "one object per certificate, parsed")
    list_certs.set_defaults(func=_dispatch("_cmd_list_certs"))

    list_pools = sub.add_parser("list-pools", help="list virtual IP pools and their leases")
    _json_flag(list_pools, "the VICI get-pools reply, leases included")
    list_pools.set_defaults(func=_dispatch("_cmd_list_pools"))

    stats = sub.add_parser("stats", help="daemon statistics and drop counters (JSON)")
    _json_flag(stats, "the VICI stats reply (the default output already is JSON)")
    stats.set_defaults(func=_dispatch("_cmd_stats"))

    log = sub.add_parser("log", help="follow log lines and SA events until Ctrl-C")
    _json_flag(log, "one object per event")
    log.set_defaults(func=_dispatch("_cmd_log"))

    loglevel = sub.add_parser("loglevel", help="change log levels of a running daemon")
    loglevel.add_argument("spec", help="charon style: 'ike=2,net=1', or '1' for every group")
    loglevel.set_defaults(func=_dispatch("_cmd_loglevel"))

    initiate = sub.add_parser("initiate", help="bring up a Child SA (and its IKE SA)")
    target = initiate.add_mutually_exclusive_group(required=True)
    target.add_argument("--child", help="child name")
    target.add_argument("--ike", help="connection name")
    initiate.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    initiate.set_defaults(func=_dispatch("_cmd_initiate"))

    terminate = sub.add_parser("terminate", help="delete IKE SAs, or Child SAs alone")
    terminate.add_argument("--ike", help="connection name (deletes its IKE SAs)")
    terminate.add_argument("--child", help="child name (deletes those Child SAs only)")
    terminate.add_argument("--ike-id", type=int, help="IKE SA unique id")
    terminate.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    terminate.set_defaults(func=_dispatch("_cmd_terminate"))

    rekey = sub.add_parser("rekey", help="rekey Child or IKE SAs (VICI rekey)")
    rekey_target = rekey.add_mutually_exclusive_group(required=True)
    rekey_target.add_argument("--child", help="child name")
    rekey_target.add_argument("--ike", help="connection name (rekeys the IKE SA)")
    rekey_target.add_argument("--child-id", type=int, help="Child SA unique id")
    rekey_target.add_argument("--ike-id", type=int, help="IKE SA unique id")
    rekey.add_argument("--reauth", action="store_true", help="reauthenticate the IKE SA")
    rekey.set_defaults(func=_dispatch("_cmd_rekey"))

    decode = sub.add_parser(
        "decode", add_help=False, help="dissect IKEv2 in a capture (petrel decode --help)"
    )
    decode.set_defaults(func=None)

    demo = sub.add_parser("demo", help="two namespaces, a real tunnel, traffic through it")
    demo.add_argument("--seconds", type=float, default=3.0, help="throughput test duration")
    demo.add_argument(
        "--no-strongswan",
        action="store_true",
        help="skip the Petrel↔strongSwan pair even when strongSwan is installed",
    )
    demo.set_defaults(func=_dispatch("_cmd_demo"))

    pki = sub.add_parser(
        "pki", add_help=False, help="keys, certificates and CRLs (petrel pki --help)"
    )
    pki.set_defaults(func=None)  # dispatched before parsing: its module loads the PKI code
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("PETREL_DEBUG", "") not in ("", "0")
    if argv[:1] == ["--debug"]:
        debug, argv = True, argv[1:]
    command = "petrel"
    try:
        if argv and argv[0] == "decode":
            from ..decode.cli import decode_main

            return decode_main(argv[1:])
        if argv and argv[0] == "pki":
            from .. import pki_cli

            command = "petrel pki"
            return pki_cli.run(argv[1:])
        args = build_parser().parse_args(argv)
        debug = debug or args.debug
        command = f"petrel {args.command}"
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_FAILED  # `petrel list-sas | head`: the reader left
    except Exception as exc:
        if debug or not isinstance(exc, _user_errors()):
            raise
        print(f"{command}: {describe_error(exc)}", file=sys.stderr)
        if isinstance(exc, DaemonUnreachable):
            return EXIT_UNREACHABLE
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED
